//! Rollout bucketing exactly as Unleash's gradual rollout does it, so a flag moved between the
//! two systems keeps the same users: `murmur3_x86_32("<group>:<id>", seed 0) % 100 + 1`.

/// MurmurHash3, x86 32-bit variant (Austin Appleby's reference `MurmurHash3_x86_32`).
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, byte) in tail.iter().enumerate() {
            k |= u32::from(*byte) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Unleash's `normalizedValue(id, group)`: the user's bucket in the group, 1..=100.
pub fn normalized_value(id: &str, group: &str) -> u32 {
    // Hashed from a stack buffer: no allocation on the evaluation path for ordinary sizes.
    let len = group.len() + 1 + id.len();
    let mut stack = [0u8; 384];
    let mut heap = Vec::new();
    let buffer: &mut [u8] = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    buffer[..group.len()].copy_from_slice(group.as_bytes());
    buffer[group.len()] = b':';
    buffer[group.len() + 1..].copy_from_slice(id.as_bytes());
    murmur3_x86_32(buffer, 0) % 100 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unleash_vectors_hold() {
        assert_eq!(normalized_value("123", "gr1"), 73);
        assert_eq!(normalized_value("999", "groupX"), 25);
    }

    #[test]
    fn murmur3_matches_the_reference_implementation() {
        // Published vectors of MurmurHash3_x86_32 (empty input, seeds, every tail length).
        let cases: [(&[u8], u32, u32); 9] = [
            (b"", 0, 0),
            (b"", 1, 0x514e_28b7),
            (b"", 0xffff_ffff, 0x81f1_6f39),
            (b"\xff\xff\xff\xff", 0, 0x7629_3b50),
            (b"\x21\x43\x65\x87", 0, 0xf55b_516b),
            (b"\x21\x43\x65", 0, 0x7e4a_8634),
            (b"\x21\x43", 0, 0xa0f7_b07a),
            (b"\x21", 0, 0x7266_1cf4),
            (b"Hello, world!", 1234, 0xfaf6_cdb3),
        ];
        for (data, seed, expected) in cases {
            assert_eq!(murmur3_x86_32(data, seed), expected, "{data:?} seed {seed}");
        }
        assert_eq!(murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0x9747_b28c), 0x2fa8_26cd);
    }

    #[test]
    fn buckets_are_in_range_spread_evenly_and_stable_past_the_stack_buffer() {
        let mut counts = [0u32; 101];
        for i in 0..100_000u32 {
            let bucket = normalized_value(&format!("user-{i}"), "rollout");
            assert!((1..=100).contains(&bucket));
            counts[bucket as usize] += 1;
        }
        // 1,000 expected per bucket; murmur3 keeps every bucket well within ±20%.
        assert!(counts[1..].iter().all(|&n| (800..=1200).contains(&n)), "{counts:?}");
        let long_id = "x".repeat(1000);
        let joined = format!("g:{long_id}");
        assert_eq!(normalized_value(&long_id, "g"), murmur3_x86_32(joined.as_bytes(), 0) % 100 + 1);
    }
}
