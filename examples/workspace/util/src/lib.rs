//! Word statistics, written so that each registry dependency is really used.

use bitflags::bitflags;
use fnv::FnvHashMap;
use smallvec::SmallVec;

bitflags! {
    /// What a piece of text contains.
    pub struct Traits: u8 {
        const HAS_NEWLINE = 0b01;
        const HAS_DIGIT = 0b10;
    }
}

/// Count each whitespace-separated word.
pub fn word_counts(text: &str) -> FnvHashMap<&str, usize> {
    let mut counts = FnvHashMap::default();
    for word in text.split_whitespace() {
        *counts.entry(word).or_insert(0) += 1;
    }
    counts
}

/// Byte offsets of every newline (few, so they stay on the stack).
pub fn line_starts(text: &str) -> SmallVec<[usize; 8]> {
    memchr::memchr_iter(b'\n', text.as_bytes()).collect()
}

pub fn traits(text: &str) -> Traits {
    let mut t = Traits::empty();
    if memchr::memchr(b'\n', text.as_bytes()).is_some() {
        t |= Traits::HAS_NEWLINE;
    }
    if text.bytes().any(|b| b.is_ascii_digit()) {
        t |= Traits::HAS_DIGIT;
    }
    t
}
