//! Keys and values. etcd's benchmark writes `--key-size` bytes holding a varint of the key index
//! (sequential or random within `--key-space-size`); ours are the same shape, but printable and always
//! under the bench's own prefix, so that a human can see them and a prefix delete removes them all.

/// Number of decimal digits of `n`.
pub fn digits(n: u64) -> usize {
    let mut d = 1;
    let mut n = n / 10;
    while n > 0 {
        d += 1;
        n /= 10;
    }
    d
}

/// Builds the keys and the value of a run.
#[derive(Debug, Clone)]
pub struct KeySpace {
    prefix: String,
    key_size: usize,
    key_space_size: u64,
    sequential: bool,
}

impl KeySpace {
    pub fn new(prefix: &str, key_size: usize, key_space_size: u64, sequential: bool) -> Self {
        KeySpace {
            prefix: prefix.to_string(),
            key_size,
            key_space_size: key_space_size.max(1),
            sequential,
        }
    }

    /// The key with index `index`: the prefix, then the index in decimal, zero-padded to `key_size`
    /// bytes (validation makes sure `key_size` holds every index of the key space).
    pub fn key(&self, index: u64) -> Vec<u8> {
        // Padded by hand rather than with `format!("{index:0>width$}")`, whose padding goes one
        // character at a time through the formatter: with 256-byte keys that was 3% of the client's
        // CPU at `--load=l`, for a key made on every request.
        let mut buffer = itoa::Buffer::new();
        let digits = buffer.format(index).as_bytes();
        let mut k = Vec::with_capacity(self.prefix.len() + self.key_size.max(digits.len()));
        k.extend_from_slice(self.prefix.as_bytes());
        k.resize(k.len() + self.key_size.saturating_sub(digits.len()), b'0');
        k.extend_from_slice(digits);
        k
    }

    /// Index of the key for request `i`: `i mod key-space-size` with `--sequential-keys`, uniformly
    /// random otherwise, as etcd's benchmark picks them.
    pub fn index_for(&self, i: u64, rng: &mut fastrand::Rng) -> u64 {
        if self.sequential {
            i % self.key_space_size
        } else {
            rng.u64(0..self.key_space_size)
        }
    }

    pub fn key_space_size(&self) -> u64 {
        self.key_space_size
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `n` distinct key indexes starting at `start`, for a txn of several puts: consecutive (mod the
    /// key space) so that they never repeat inside one txn.
    pub fn distinct_indexes(&self, start: u64, n: usize) -> impl Iterator<Item = u64> + '_ {
        (0..n as u64).map(move |j| (start + j) % self.key_space_size)
    }
}

/// A value of `size` random bytes, made once per run as etcd's benchmark does.
pub fn random_value(size: usize, rng: &mut fastrand::Rng) -> Vec<u8> {
    (0..size).map(|_| rng.alphanumeric() as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_counts() {
        assert_eq!(digits(0), 1);
        assert_eq!(digits(9), 1);
        assert_eq!(digits(10), 2);
        assert_eq!(digits(99_999_999), 8);
        assert_eq!(digits(u64::MAX), 20);
    }

    #[test]
    fn keys_have_the_size_and_prefix() {
        let ks = KeySpace::new("/p/", 8, 1000, true);
        assert_eq!(ks.key(42), b"/p/00000042".to_vec());
        // The same bytes as Rust's own zero padding, at every width and magnitude (an index wider
        // than the key is written whole, as the formatter does).
        for width in [0, 1, 3, 8, 20, 256] {
            let ks = KeySpace::new("/k/", width, u64::MAX, false);
            for index in [0, 1, 9, 10, 99, 12_345, 1 << 40, u64::MAX] {
                assert_eq!(
                    ks.key(index),
                    format!("/k/{index:0>width$}").into_bytes(),
                    "width {width}, index {index}"
                );
            }
        }
        assert_eq!(ks.key(42).len(), 3 + 8);
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(ks.index_for(1005, &mut rng), 5);
    }

    #[test]
    fn random_indexes_stay_in_the_key_space() {
        let ks = KeySpace::new("/p/", 8, 10, false);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut seen = [false; 10];
        for i in 0..1000 {
            let idx = ks.index_for(i, &mut rng);
            assert!(idx < 10);
            seen[idx as usize] = true;
        }
        assert!(seen.iter().all(|s| *s), "1000 draws cover 10 keys");
    }

    #[test]
    fn txn_indexes_are_distinct() {
        let ks = KeySpace::new("/p/", 8, 4, false);
        let v: Vec<u64> = ks.distinct_indexes(3, 4).collect();
        assert_eq!(v, vec![3, 0, 1, 2]);
    }

    #[test]
    fn values_have_the_size() {
        let mut rng = fastrand::Rng::with_seed(3);
        assert_eq!(random_value(1024, &mut rng).len(), 1024);
    }
}
