//! `get` on a warm cache: a 1 KB template with 3 variables, rendered.
//! Target: ≤ 1 µs per call. Run with `cargo bench -p promptos-sdk --bench get`.

use criterion::{criterion_group, criterion_main, Criterion};

fn warm_get(_c: &mut Criterion) {}

criterion_group!(benches, warm_get);
criterion_main!(benches);
