//! Number formatting shared by the Markdown and HTML reports, so both read the same.

/// `12345.6` → `12,346`.
pub(crate) fn fmt_int(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// Milliseconds for people: `0.42 ms`, `5.4 ms`, `812 ms`, `1.23 s`, `12.3 s`.
pub(crate) fn fmt_ms(v: f64) -> String {
    if !v.is_finite() {
        "n/a".to_owned()
    } else if v > 0.0 && v < 0.01 {
        // Microseconds would read as `0.00 ms`.
        format!("{:.0} µs", v * 1000.0)
    } else if v < 1.0 {
        format!("{v:.2} ms")
    } else if v < 10.0 {
        format!("{v:.1} ms")
    } else if v < 1000.0 {
        format!("{v:.0} ms")
    } else if v < 10_000.0 {
        format!("{:.2} s", v / 1000.0)
    } else {
        format!("{:.1} s", v / 1000.0)
    }
}

/// A fraction as a percentage: `0` → `0%`, `0.0123` → `1.23%`, `0.5` → `50.0%`.
pub(crate) fn fmt_pct(v: f64) -> String {
    if !v.is_finite() {
        "n/a".to_owned()
    } else if v == 0.0 {
        "0%".to_owned()
    } else if v.abs() < 0.1 {
        format!("{:.2}%", v * 100.0)
    } else {
        format!("{:.1}%", v * 100.0)
    }
}

/// US dollars: `$4.86`, `$0.012`, `$1,234`.
pub(crate) fn fmt_usd(v: f64) -> String {
    if !v.is_finite() {
        "n/a".to_owned()
    } else if v >= 1000.0 {
        format!("${}", fmt_int(v))
    } else if v >= 1.0 || v == 0.0 {
        format!("${v:.2}")
    } else {
        format!("${v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_int(1234567.4), "1,234,567");
        assert_eq!(fmt_int(-1000.0), "-1,000");
        assert_eq!(fmt_int(999.0), "999");
        assert_eq!(fmt_ms(0.4249), "0.42 ms");
        assert_eq!(fmt_ms(812.2), "812 ms");
        assert_eq!(fmt_ms(1234.0), "1.23 s");
        assert_eq!(fmt_pct(0.0123), "1.23%");
        assert_eq!(fmt_pct(0.5), "50.0%");
        assert_eq!(fmt_usd(4.857), "$4.86");
        assert_eq!(fmt_usd(0.0123), "$0.012");
    }
}
