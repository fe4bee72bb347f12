//! Entity keys encoded for maps: the parts as bytes, inline when short, with their hash
//! computed once. The online store's shards and a streaming query's groups both key by them.

use std::hash::{BuildHasher, Hash, Hasher};

use super::{EntityKey, KeyPart};
use crate::schema::Value;

/// The hasher of entity keys: fast, seeded per process.
pub(crate) type KeyHasher = foldhash::fast::RandomState;

/// Encoded keys up to this many bytes are stored inline (a join key of one string of up to 17
/// bytes, or two integers).
const INLINE_KEY: usize = 22;

/// An entity key as the shards hold it: its parts encoded as bytes, inline when short, and its
/// hash, computed once. A probe then compares bytes in the slot it has already read, where an
/// [`EntityKey`] made it follow two pointers (vector, then string) to memory of its own: with
/// many entities those were cache misses on every write, the largest cost of the write path.
///
/// Encoding, part after part: a string is `0`, its length (`u32` little-endian) and its bytes;
/// an integer is `1` and its 8 bytes little-endian. Equal keys encode equally, and the encoding
/// decodes back to the key ([`SlotKey::entity_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotKey {
    pub(crate) hash: u64,
    bytes: KeyBytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyBytes {
    /// Length, then the bytes; the rest of the array is zero, so equality may compare it all.
    Inline(u8, [u8; INLINE_KEY]),
    Heap(Box<[u8]>),
}

/// A join-key part borrowed from a key or a record, for encoding.
#[derive(Clone, Copy)]
enum PartRef<'a> {
    Str(&'a str),
    Int(i64),
}

impl SlotKey {
    pub(crate) fn new(key: &EntityKey, hasher: &KeyHasher) -> Self {
        Self::encode(
            key.0.iter().map(|p| match p {
                KeyPart::Str(s) => PartRef::Str(s),
                KeyPart::Int(i) => PartRef::Int(*i),
            }),
            hasher,
        )
    }

    /// The key of `columns` of `record`, with no [`EntityKey`] built on the way; `None` when a
    /// column is missing or neither a string nor an integer (as [`EntityKey::from_values`]).
    pub(crate) fn of_record(
        record: &[Value],
        columns: &[usize],
        hasher: &KeyHasher,
    ) -> Option<Self> {
        let part = |c: &usize| match record.get(*c)? {
            Value::String(s) => Some(PartRef::Str(s)),
            Value::Int(i) => Some(PartRef::Int(*i)),
            _ => None,
        };
        if !columns.iter().all(|c| part(c).is_some()) {
            return None;
        }
        Some(Self::encode(columns.iter().filter_map(part), hasher))
    }

    fn encode<'a>(parts: impl Iterator<Item = PartRef<'a>> + Clone, hasher: &KeyHasher) -> Self {
        let len: usize = parts
            .clone()
            .map(|p| match p {
                PartRef::Str(s) => 5 + s.len(),
                PartRef::Int(_) => 9,
            })
            .sum();
        let fill = |buf: &mut [u8]| {
            let mut at = 0;
            for p in parts {
                match p {
                    PartRef::Str(s) => {
                        // A string longer than 4 GiB cannot arrive (bodies are limited).
                        let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
                        buf[at] = 0;
                        buf[at + 1..at + 5].copy_from_slice(&n.to_le_bytes());
                        buf[at + 5..at + 5 + s.len()].copy_from_slice(s.as_bytes());
                        at += 5 + s.len();
                    }
                    PartRef::Int(i) => {
                        buf[at] = 1;
                        buf[at + 1..at + 9].copy_from_slice(&i.to_le_bytes());
                        at += 9;
                    }
                }
            }
        };
        let bytes = match u8::try_from(len) {
            Ok(short) if len <= INLINE_KEY => {
                let mut buf = [0u8; INLINE_KEY];
                fill(&mut buf[..len]);
                KeyBytes::Inline(short, buf)
            }
            _ => {
                let mut buf = vec![0u8; len];
                fill(&mut buf);
                KeyBytes::Heap(buf.into_boxed_slice())
            }
        };
        let mut key = SlotKey { hash: 0, bytes };
        key.hash = hasher.hash_one(key.bytes());
        key
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.bytes {
            KeyBytes::Inline(len, buf) => &buf[..usize::from(*len).min(INLINE_KEY)],
            KeyBytes::Heap(b) => b,
        }
    }

    /// Heap bytes of the key (none when inline).
    pub(crate) fn heap(&self) -> usize {
        match &self.bytes {
            KeyBytes::Inline(..) => 0,
            KeyBytes::Heap(b) => b.len(),
        }
    }

    /// The key decoded.
    pub(crate) fn entity_key(&self) -> EntityKey {
        let b = self.bytes();
        let mut parts = Vec::new();
        let mut at = 0;
        while let Some(&tag) = b.get(at) {
            if tag == 0 {
                let n = b
                    .get(at + 1..at + 5)
                    .and_then(|n| <[u8; 4]>::try_from(n).ok())
                    .map_or(0, |n| u32::from_le_bytes(n) as usize);
                let text = b.get(at + 5..at + 5 + n).unwrap_or(&[]);
                parts.push(KeyPart::Str(String::from_utf8_lossy(text).into_owned()));
                at += 5 + n;
            } else {
                let i = b
                    .get(at + 1..at + 9)
                    .and_then(|n| <[u8; 8]>::try_from(n).ok())
                    .map_or(0, i64::from_le_bytes);
                parts.push(KeyPart::Int(i));
                at += 9;
            }
        }
        EntityKey(parts)
    }
}

impl Hash for SlotKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The map's hasher: the key's hash is already computed ([`SlotKey`]).
#[derive(Debug, Default)]
pub(crate) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else is still hashed, if poorly.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_keys_decode_to_the_key_inline_or_not_and_differ_when_keys_do() {
        let hasher = KeyHasher::default();
        let keys = [
            EntityKey(vec![KeyPart::Str("user_1".into())]),
            EntityKey(vec![KeyPart::Str(String::new())]),
            EntityKey(vec![KeyPart::Str("a-much-longer-user-id-than-fits".into())]),
            EntityKey(vec![KeyPart::Int(-7), KeyPart::Int(i64::MAX)]),
            EntityKey(vec![KeyPart::Str("u".into()), KeyPart::Int(3)]),
            EntityKey(vec![KeyPart::Str("u\u{3}".into())]),
            EntityKey(vec![KeyPart::Str("é".into()), KeyPart::Str("x".into())]),
        ];
        let slots: Vec<SlotKey> = keys.iter().map(|k| SlotKey::new(k, &hasher)).collect();
        assert!(matches!(slots[0].bytes, KeyBytes::Inline(..)));
        assert!(matches!(slots[2].bytes, KeyBytes::Heap(_)));
        for (k, s) in keys.iter().zip(&slots) {
            assert_eq!(&s.entity_key(), k);
            assert_eq!(s, &SlotKey::new(k, &hasher), "encoding is deterministic");
        }
        for (i, a) in slots.iter().enumerate() {
            for b in &slots[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
