//! A snapshot's tags, held compactly: a fleet's listing holds tens of thousands of snapshots with ten or more tags
//! each, and a map of owned strings per snapshot (a tree node and two allocations per tag, about 2.5 KiB for
//! Lifeboat's tags) made the listing, not the work, decide a function's memory.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Separates keys and values in [`Tags`]' text. AWS tag keys and values are letters, digits, spaces and
/// `_ . : / = + - @`, so it never occurs in one; should it, it is replaced (see [`Tags::insert`]).
const SEPARATOR: char = '\0';

/// Tags as `key → value`, sorted by key, in one allocation (`key\0value\0key\0value\0…`). Reads (`get`,
/// `contains_key`, `iter`) are what planning does; changes rebuild the text and are for the few places that make
/// tags.
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
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
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
            for part in [key, value] {
                text.extend(part.chars().map(|c| {
                    if c == SEPARATOR {
                        char::REPLACEMENT_CHARACTER
                    } else {
                        c
                    }
                }));
                text.push(SEPARATOR);
            }
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

    proptest! {
        #[test]
        fn tags_read_back_as_the_map_they_were_made_of(
            map in proptest::collection::btree_map("[a-z:_./=+@ -]{0,20}", "[A-Za-z0-9:_./=+@ -]{0,30}", 0..16),
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
}
