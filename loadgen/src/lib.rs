//! The open-loop load generator for both ingestion patterns (Stream Ingest API pushes and
//! Kafka + Spark micro-batches). Not built yet: this crate holds the workspace slot that
//! DESIGN.md gives it, and has no code.
