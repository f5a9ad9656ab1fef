//! A snapshot's tags, held compactly: a fleet's listing holds tens of thousands of snapshots with ten or more tags
//! each, and a map of owned strings per snapshot (a tree node and two allocations per tag, about 2.5 KiB for
//! Lifeboat's tags) made the listing, not the work, decide a function's memory. Lifeboat's own keys, on every
//! snapshot it makes, are held as one-character codes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::tags;

/// Separates keys and values in [`Tags`]' text. AWS tag keys and values are letters, digits, spaces and
/// `_ . : / = + - @`, so it never occurs in one; should it, it is replaced (see [`Tags::insert`]).
const SEPARATOR: char = '\0';

/// The keys held as a code: the control character `U+0001` for the first, `U+0002` for the second and so on
/// (control characters never occur in an AWS tag; in a key given to [`Tags`] they are replaced). Lifeboat's keys on
/// its snapshots: about 17 bytes each, 10 to 14 per snapshot, were a third of a listed snapshot's memory.
const CODED_KEYS: [&str; 20] = [
    tags::MANAGED,
    tags::DEPLOYMENT,
    tags::HOME_REGION,
    tags::POLICY,
    tags::PLAN,
    tags::SOURCE,
    tags::SOURCE_KIND,
    tags::TIER,
    tags::TRIGGER,
    tags::CREATED_AT,
    tags::EXPIRES_AT,
    tags::REASON,
    tags::LEGAL_HOLD,
    tags::VERIFIED_AT,
    tags::COPIED_FROM,
    tags::SOURCE_REGION,
    tags::COPIED_AT,
    tags::REQUESTED_BY,
    tags::RESTORE_SECONDS,
    tags::VERIFY_RESULT,
];

// Codes are U+0001 to U+001F: a 32nd key would be coded as a space, a character keys may hold.
const _: () = assert!(CODED_KEYS.len() < 0x20);

/// The code of `key`, if it has one.
fn code_of(key: &str) -> Option<char> {
    let index = CODED_KEYS.iter().position(|known| *known == key)?;
    char::from_u32(index as u32 + 1)
}

/// The key a part of the text stands for: a coded key, or the part itself.
fn decoded(part: &str) -> &str {
    let mut chars = part.chars();
    match (chars.next(), chars.next()) {
        (Some(code @ '\u{1}'..='\u{1f}'), None) => {
            CODED_KEYS.get(code as usize - 1).copied().unwrap_or(part)
        }
        _ => part,
    }
}

/// Tags as `key → value`, sorted by key, in one allocation (`key\0value\0key\0value\0…`, Lifeboat's own keys as
/// one-character codes). Reads (`get`, `contains_key`, `iter`) are what planning does; changes rebuild the text and
/// are for the few places that make tags.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tags {
    text: Box<str>,
}

impl Tags {
    /// No tags.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of tag `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Whether tag `key` is present, whatever its value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The tags in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.text.split_terminator(SEPARATOR);
        std::iter::from_fn(move || Some((decoded(parts.next()?), parts.next()?)))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(k, _)| k)
    }

    /// How many tags there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Set tag `key` to `value`; returns the value it replaces.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        let mut map = self.to_map();
        let old = map.insert(key, value);
        *self = Self::from(map);
        old
    }

    /// Remove tag `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let mut map = self.to_map();
        let old = map.remove(key);
        *self = Self::from(map);
        old
    }

    /// Remove every tag.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The tags as a map of owned strings.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl From<BTreeMap<String, String>> for Tags {
    fn from(map: BTreeMap<String, String>) -> Self {
        let mut text = String::with_capacity(map.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
        for (key, value) in &map {
            match code_of(key) {
                Some(code) => text.push(code),
                // A control character in a key could read as a code: replaced, like the separator.
                None => text.extend(key.chars().map(|c| {
                    if c.is_control() {
                        char::REPLACEMENT_CHARACTER
                    } else {
                        c
                    }
                })),
            }
            text.push(SEPARATOR);
            text.extend(value.chars().map(|c| {
                if c == SEPARATOR {
                    char::REPLACEMENT_CHARACTER
                } else {
                    c
                }
            }));
            text.push(SEPARATOR);
        }
        Self {
            text: text.into_boxed_str(),
        }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Tags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        Self::from(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect::<BTreeMap<String, String>>(),
        )
    }
}

impl<K: Into<String>, V: Into<String>, const N: usize> From<[(K, V); N]> for Tags {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for Tags {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, pairs: I) {
        let mut map = self.to_map();
        map.extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
        *self = Self::from(map);
    }
}

impl fmt::Debug for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A tag key: one of Lifeboat's (coded) or any other.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(&CODED_KEYS[..]).prop_map(str::to_string),
            "[a-z:_./=+@ -]{0,20}",
        ]
    }

    proptest! {
        #[test]
        fn tags_read_back_as_the_map_they_were_made_of(
            map in proptest::collection::btree_map(key(), "[A-Za-z0-9:_./=+@ -]{0,30}", 0..16),
        ) {
            let tags = Tags::from(map.clone());
            prop_assert_eq!(tags.to_map(), map.clone());
            prop_assert_eq!(tags.len(), map.len());
            prop_assert_eq!(tags.is_empty(), map.is_empty());
            for (key, value) in &map {
                prop_assert_eq!(tags.get(key), Some(value.as_str()));
            }
            prop_assert_eq!(tags.get("absent-key-with-more-than-twenty-chars"), None);
            let json = serde_json::to_string(&tags).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&map).unwrap());
            prop_assert_eq!(serde_json::from_str::<Tags>(&json).unwrap(), tags);
        }
    }

    #[test]
    fn changes_keep_the_order_and_return_what_they_replace() {
        let mut tags: Tags = [("b", "2"), ("a", "1")].into_iter().collect();
        assert_eq!(tags.insert("c".into(), "3".into()), None);
        assert_eq!(tags.insert("a".into(), "one".into()), Some("1".into()));
        assert_eq!(tags.remove("b"), Some("2".into()));
        assert_eq!(tags.remove("b"), None);
        tags.extend([("d", "4")]);
        let mut cleared = tags.clone();
        cleared.clear();
        assert!(cleared.is_empty());
        assert_eq!(
            tags.iter().collect::<Vec<_>>(),
            [("a", "one"), ("c", "3"), ("d", "4")]
        );
        assert_eq!(format!("{tags:?}"), r#"{"a": "one", "c": "3", "d": "4"}"#);
    }

    #[test]
    fn an_empty_value_is_kept() {
        let tags: Tags = [("lifeboat:legal-hold", ""), ("k", "v")]
            .into_iter()
            .collect();
        assert_eq!(tags.get("lifeboat:legal-hold"), Some(""));
        assert_eq!(tags.len(), 2);
    }

    #[test]
    fn a_separator_in_a_tag_is_replaced_not_misread() {
        let tags: Tags = [("a\0b", "c\0d")].into_iter().collect();
        assert_eq!(
            tags.iter().collect::<Vec<_>>(),
            [("a\u{fffd}b", "c\u{fffd}d")]
        );
    }

    #[test]
    fn a_control_character_key_is_not_read_as_a_coded_key() {
        let tags: Tags = [("\u{1}", "x"), ("\u{2}y", "z")].into_iter().collect();
        assert_eq!(
            tags.iter().collect::<Vec<_>>(),
            [("\u{fffd}", "x"), ("\u{fffd}y", "z")]
        );
        assert_eq!(tags.get(tags::MANAGED), None);
    }

    #[test]
    fn lifeboat_keys_take_one_byte_each() {
        let tags: Tags = CODED_KEYS.iter().map(|key| (*key, "v")).collect();
        assert_eq!(tags.text.len(), CODED_KEYS.len() * 4);
        assert_eq!(tags.keys().collect::<Vec<_>>().len(), CODED_KEYS.len());
        for key in CODED_KEYS {
            assert_eq!(tags.get(key), Some("v"), "{key}");
        }
        let keys: Vec<&str> = tags.keys().collect();
        assert!(keys.is_sorted(), "keys in order: {keys:?}");
    }
}
