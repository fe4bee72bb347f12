//! The open-loop load generator for both ingestion patterns (Stream Ingest API pushes and
//! Kafka + Spark micro-batches). Not built yet: this crate holds its place in the workspace and
//! has no code.
