//! A/B experiments: an environment serves several versions of a prompt, each to a share
//! of the traffic, and each end user (subject) sticks to one of them.
//!
//! Traffic is cut into [`BUCKETS`] buckets of 1 %. A subject's bucket is a stable hash
//! of the prompt, the experiment and the subject key ([`bucket_of`]), so it is the same
//! on every call, in every process and in every language that implements the hash. The
//! experiment says which variant serves each bucket ([`allocate`]); when the weights
//! change, only the buckets a shrinking variant gives up move, so as few subjects as
//! possible see a different variant.

use crate::names::VersionString;
use serde::{Deserialize, Serialize};

/// Buckets of traffic: one per whole percent of weight.
pub const BUCKETS: usize = 100;
/// The most variants one experiment may split traffic between.
pub const MAX_VARIANTS: usize = 10;

/// One arm of a split: a version and its share of traffic in whole percent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitVariant {
    pub version_string: VersionString,
    pub weight: u8,
}

/// Why a split was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSplit(pub String);

/// Checks the shape of a split: 2 to [`MAX_VARIANTS`] distinct versions whose weights
/// are whole percentages summing to 100.
pub fn check_split(variants: &[SplitVariant]) -> Result<(), InvalidSplit> {
    if variants.len() < 2 || variants.len() > MAX_VARIANTS {
        return Err(InvalidSplit(format!(
            "a split needs 2 to {MAX_VARIANTS} variants (got {}); to serve one version, deploy it",
            variants.len()
        )));
    }
    for (i, v) in variants.iter().enumerate() {
        if variants[..i].iter().any(|w| w.version_string == v.version_string) {
            return Err(InvalidSplit(format!("version {:?} appears twice in the split", v.version_string.as_str())));
        }
        if v.weight > 100 {
            return Err(InvalidSplit(format!("a weight is a percentage, 0 to 100 (got {})", v.weight)));
        }
    }
    let total: u32 = variants.iter().map(|v| u32::from(v.weight)).sum();
    if total != 100 {
        return Err(InvalidSplit(format!("the weights must add up to 100 (they add up to {total})")));
    }
    Ok(())
}

/// Which variant (index into the experiment's variants) serves each bucket.
///
/// Without `previous`, variants take contiguous runs of buckets in their order. With
/// the assignment in force before a weight change, every variant that shrinks gives up
/// its highest-numbered buckets and every variant that grows takes the lowest-numbered
/// freed ones, in variant order: only the buckets that must move do.
///
/// `weights` must add up to [`BUCKETS`] (see [`check_split`]).
pub fn allocate(weights: &[u8], previous: Option<&[u8]>) -> Vec<u8> {
    let Some(previous) = previous.filter(|p| p.len() == BUCKETS) else {
        return weights.iter().enumerate().flat_map(|(i, w)| std::iter::repeat_n(i as u8, usize::from(*w))).collect();
    };
    let mut buckets = previous.to_vec();
    let mut counts = vec![0usize; weights.len()];
    for &b in previous {
        if let Some(c) = counts.get_mut(usize::from(b)) {
            *c += 1;
        }
    }
    let mut freed = Vec::new();
    for (variant, &weight) in weights.iter().enumerate() {
        let surplus = counts[variant].saturating_sub(usize::from(weight));
        let mut released = 0;
        for (bucket, owner) in buckets.iter().enumerate().rev() {
            if released == surplus {
                break;
            }
            if usize::from(*owner) == variant {
                freed.push(bucket);
                released += 1;
            }
        }
    }
    freed.sort_unstable();
    let mut freed = freed.into_iter();
    for (variant, &weight) in weights.iter().enumerate() {
        for _ in counts[variant]..usize::from(weight) {
            if let Some(bucket) = freed.next() {
                buckets[bucket] = variant as u8;
            }
        }
    }
    buckets
}

/// The bucket (0–99) of `subject_key` in experiment `experiment_id` of prompt `prompt`:
/// the first 8 bytes of SHA-256 over `prompt`, a newline, `experiment_id` (lowercase
/// hyphenated UUID), a newline and `subject_key`, read as a big-endian integer, modulo
/// 100. The SDK computes the same.
///
/// ```
/// use promptos_core::experiment::bucket_of;
/// let b = bucket_of("checkout-copy", "0190c3a4-0000-7000-8000-000000000000", "user-42");
/// assert!(b < 100);
/// assert_eq!(b, bucket_of("checkout-copy", "0190c3a4-0000-7000-8000-000000000000", "user-42"));
/// ```
pub fn bucket_of(prompt: &str, experiment_id: &str, subject_key: &str) -> usize {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(prompt.as_bytes());
    h.update(b"\n");
    h.update(experiment_id.as_bytes());
    h.update(b"\n");
    h.update(subject_key.as_bytes());
    let digest = h.finalize();
    let first = u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"));
    (first % BUCKETS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variants(weights: &[u8]) -> Vec<SplitVariant> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| SplitVariant { version_string: VersionString::parse(&format!("v{i}")).unwrap(), weight: *w })
            .collect()
    }

    fn shares(buckets: &[u8], n: usize) -> Vec<usize> {
        (0..n).map(|v| buckets.iter().filter(|b| usize::from(**b) == v).count()).collect()
    }

    #[test]
    fn splits_must_have_distinct_versions_and_weights_adding_up_to_100() {
        assert!(check_split(&variants(&[50, 50])).is_ok());
        assert!(check_split(&variants(&[100, 0])).is_ok());
        assert!(check_split(&variants(&[100])).unwrap_err().0.contains("2 to 10"));
        assert!(check_split(&variants(&[50, 40])).unwrap_err().0.contains("add up to 90"));
        let mut twice = variants(&[50, 50]);
        twice[1].version_string = twice[0].version_string.clone();
        assert!(check_split(&twice).unwrap_err().0.contains("appears twice"));
    }

    #[test]
    fn buckets_follow_the_weights() {
        let b = allocate(&[50, 30, 20], None);
        assert_eq!(b.len(), BUCKETS);
        assert_eq!(shares(&b, 3), vec![50, 30, 20]);
    }

    #[test]
    fn a_weight_change_moves_only_buckets_of_shrinking_variants() {
        let before = allocate(&[50, 50], None);
        let after = allocate(&[90, 10], Some(&before));
        assert_eq!(shares(&after, 2), vec![90, 10]);
        for (b, a) in before.iter().zip(&after) {
            assert!(b == a || (*b == 1 && *a == 0), "only variant 1 gives buckets to variant 0");
        }
        // Three variants: the middle one shrinks, the others grow; nothing else moves.
        let before = allocate(&[30, 40, 30], None);
        let after = allocate(&[40, 10, 50], Some(&before));
        assert_eq!(shares(&after, 3), vec![40, 10, 50]);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        assert_eq!(moved, 30, "exactly the 30 buckets variant 1 gave up");
        assert!(before.iter().zip(&after).all(|(b, a)| b == a || *b == 1));
    }

    #[test]
    fn the_hash_is_the_documented_one() {
        // Also checked in the SDK and computable with any SHA-256 (here Python's hashlib):
        // int.from_bytes(sha256(b"checkout\n<id>\nuser-42").digest()[:8], "big") % 100
        let id = "0190c3a4-0000-7000-8000-000000000000";
        assert_eq!(bucket_of("checkout", id, "user-42"), 81);
        assert_eq!(bucket_of("checkout", id, "user-7"), 88);
        assert_eq!(bucket_of("checkout", id, "alice@example.com"), 19);
    }

    #[test]
    fn subjects_spread_evenly_and_stick_to_their_bucket() {
        let id = "0190c3a4-0000-7000-8000-000000000000";
        let buckets = allocate(&[50, 50], None);
        let first = (0..10_000).filter(|i| buckets[bucket_of("p", id, &format!("user-{i}"))] == 0).count();
        assert!((4_800..=5_200).contains(&first), "{first} of 10,000 on the first variant");
        assert_eq!(bucket_of("p", id, "user-1"), bucket_of("p", id, "user-1"));
    }
}
