//! Reference ids: `CNT-` and 8 characters from an alphabet without look-alikes (no 0/O,
//! 1/I/L), drawn from the operating system's random number generator.

/// The 31 characters a reference is made of.
pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Characters after the prefix.
pub const LENGTH: usize = 8;

/// A fresh reference id, `CNT-XXXXXXXX`.
pub fn new_reference() -> anyhow::Result<String> {
    let mut id = String::with_capacity(4 + LENGTH);
    id.push_str("CNT-");
    let mut chosen = 0;
    while chosen < LENGTH {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("the OS random number generator failed: {err}"))?;
        // Five bits give 0..32; 31 is dropped so that every character is equally likely.
        for byte in bytes.iter().map(|b| usize::from(b & 0x1f)).filter(|b| *b < ALPHABET.len()) {
            if chosen == LENGTH {
                break;
            }
            id.push(char::from(ALPHABET[byte]));
            chosen += 1;
        }
    }
    Ok(id)
}

/// Whether `id` has the shape of a reference id.
pub fn is_reference(id: &str) -> bool {
    id.strip_prefix("CNT-").is_some_and(|rest| rest.len() == LENGTH && rest.bytes().all(|b| ALPHABET.contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_have_the_shape_and_do_not_repeat() {
        let ids: std::collections::HashSet<String> = (0..2000).map(|_| new_reference().unwrap()).collect();
        assert_eq!(ids.len(), 2000);
        assert!(ids.iter().all(|id| is_reference(id)), "{ids:?}");
        assert!(!is_reference("CNT-0OIL1234") && !is_reference("CNT-ABC") && !is_reference("XYZ-ABCDEFGH"));
    }

    #[test]
    fn every_character_of_the_alphabet_is_used_and_no_look_alike() {
        let seen: std::collections::HashSet<u8> =
            (0..500).flat_map(|_| new_reference().unwrap().into_bytes().into_iter().skip(4)).collect();
        assert_eq!(seen.len(), ALPHABET.len());
        for look_alike in *b"01OIL" {
            assert!(!ALPHABET.contains(&look_alike));
        }
    }
}
