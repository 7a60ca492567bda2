//! Lakegate's Rust integration tests, compiled into one binary.
//!
//! Table of contents:
//!
//! * `catalog_errors` — a broken catalog is refused with every error, its file
//!   and the offending name; `lakegate catalog check` prints them.
//! * `pushed_predicates` — a leakproof user predicate is applied once, by
//!   the secured scan beneath the barrier; any other stays above it; the
//!   audit names the columns filtered on.
//! * `barrier_statistics` — a barrier passes on an estimate of its rows,
//!   made once when its policy plan is planned, and nothing per column.
//! * `probe` — a probe function placed anywhere in user SQL only ever sees
//!   values the role may see (test tool b).
//! * `plan_checker` — in the final physical plan, every scan of a protected
//!   table sits under its policy barrier, and nothing the user wrote was pushed
//!   beneath it (test tool c).
//! * `oracle` — the differential oracle: queries under each demo role return
//!   exactly what they return over that role's visible view, materialised
//!   independently from the raw Parquet (test tool a).
//! * `malformed` — a corpus of malformed SQL never panics and always gets a
//!   clear error.
//! * `result_schema` — masked columns carry `lakegate.mask` metadata.
//! * `cli` — the `lakegate` binary's commands as a user runs them.
//! * `flight` — the Flight SQL service on a loopback port with arrow-flight's
//!   clients: authentication, runtime roles, sealed tickets.
//! * `flight_sql` — prepared statements and parameters, GetTables,
//!   GetXdbcTypeInfo, the key RPCs, session options, refused writes.
//! * `partitions` — queries read in independent parts (parallel endpoints)
//!   are disjoint and make the whole result.
//! * `audit` — the audit log (reads, denials, failed sign-ins), `system.audit`
//!   for administrators only, the per-user query cap and the query timeout.
//! * `scan_reuse` — plans kept across queries (scan plans, statement plans)
//!   answer each user, role and database its own, with fresh execution state.
//! * `clock` — `now()` and `current_date()` are each query's start time, in
//!   user SQL and in policies, never frozen by a kept plan.
//! * `table_cache` — tables kept in memory answer as their files do, for
//!   every role; changed files are read again; what does not fit is not kept.
//! * `storage` — storage location settings are checked, Hive partition
//!   columns prune reads and work in grants, a failing location is named.
//! * `long_input` — 100,000-term chains and a 100,000-branch UNION ALL
//!   answer correctly under a role with a row filter and masks.
//! * `generated_sql` — random deep and wide SQL answers or is refused
//!   cleanly, in process and through the real binary.
//! * `delta` — Delta Lake tables: versions read under the table's current
//!   policy, INSERT as one checked commit, concurrent writers and readers.
//! * `created_tables` — CREATE TABLE AS declared through a policy store and
//!   owned by its creator; racing creators leave one table and no stray
//!   objects; refused creations write nothing.
//! * `distributed` — a coordinator and two `lakegate worker` processes:
//!   TPC-H with one node's answers and checked plans, unsigned or tampered
//!   plans refused, a worker killed mid-query.
//! * `join_order` — joins reordered by estimate give TPC-H's answers as
//!   written, with checked plans; under the policy, Q5 and Q8 meet their
//!   empty join before any line item is read.
//! * `joined_keys` — aggregates narrowed to the keys a join keeps: TPC-H
//!   Q2 and Q20 under both roles.
//! * `correlated_windows` — TPC-H Q17's correlated average computed as a
//!   window over the selected parts' line items, `lineitem` read once,
//!   under both roles.
//! * `conjunctions` — TPC-H Q6's and Q19's filters evaluated as narrowing
//!   conjunctions, under both roles, with checked plans.
//! * `totals_from_groups` — TPC-H Q11's total computed from its groups:
//!   `partsupp` joined and aggregated once, under both roles.
//! * `fleet` — the gRPC health service, and draining at SIGTERM: health
//!   checks turn NOT_SERVING while calls are still served, then new
//!   connections are refused and running streams finish.
//! * `panics` — a panic fails its own query with INTERNAL, audited, and the
//!   server goes on serving.
//! * `store` — the policy store (SQLite, and PostgreSQL when the test
//!   script runs one): a catalog applied to it answers as its files, survives
//!   reopening, re-applies as a no-op; the first administrator.
//! * `masks` — every built-in mask over random columns with NULLs keeps
//!   NULLs NULL and shows what its definition says (a property test).

#[path = "../common/mod.rs"]
mod common;

mod audit;
mod barrier_statistics;
mod catalog_errors;
mod cli;
mod clock;
mod conjunctions;
mod correlated_windows;
mod created_tables;
mod delta;
mod distributed;
mod dynamic_filters;
mod fleet;
mod flight;
mod flight_sql;
mod generated_sql;
mod join_order;
mod joined_keys;
mod long_input;
mod malformed;
mod masks;
mod nested;
mod oracle;
mod panics;
mod partitions;
mod plan_checker;
mod probe;
mod pushed_predicates;
mod result_schema;
mod reuse_subplans;
mod scan_reuse;
mod semi_joins;
mod storage;
mod store;
mod table_cache;
mod tags;
mod totals_from_groups;
mod tpch;
mod writes;
