//! A walk over the parsed TOML (`toml_edit`, which keeps every key's and value's place in the
//! text) so each error says where it is: line, column, table and key.
//!
//! A [`Table`] hands out its keys one by one; every key asked for is allowed, and whatever is
//! left when the table is finished is an unknown key (with a suggestion when it is close to an
//! allowed one).

use std::ops::{Range, RangeInclusive};

use toml_edit::{Item, TableLike, Value};

use super::error::{ConfigError, line_column};

/// The text being read and its name, for errors.
pub(super) struct Source<'a> {
    pub(crate) text: &'a str,
    pub(crate) file: &'a str,
}

impl Source<'_> {
    pub(crate) fn error(
        &self,
        span: Option<Range<usize>>,
        table: Option<&str>,
        message: String,
    ) -> ConfigError {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_column(self.text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError { file: self.file.to_string(), line, column, table: table.map(str::to_string), message }
    }

    /// A TOML syntax error, in toml's words (its first lines; the excerpt it adds is ours to give).
    pub(crate) fn syntax(&self, e: &toml_edit::TomlError) -> ConfigError {
        let message: Vec<&str> = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        self.error(e.span(), None, format!("invalid TOML: {}", message.join("; ")))
    }
}

/// A table or inline table being read.
pub(super) struct Table<'a> {
    src: &'a Source<'a>,
    /// As the operator knows it: `[server]`, `[[refclock]] #2`, `[[refclock]] #2 pps`.
    pub(crate) name: String,
    span: Option<Range<usize>>,
    items: &'a dyn TableLike,
    asked: Vec<&'static str>,
}

impl<'a> Table<'a> {
    pub(crate) fn new(
        src: &'a Source<'a>,
        name: String,
        span: Option<Range<usize>>,
        items: &'a dyn TableLike,
    ) -> Self {
        Table { src, name, span, items, asked: Vec::new() }
    }

    /// An error about the table as a whole (a missing key, keys that clash), at its header.
    pub(crate) fn error(&self, message: String) -> ConfigError {
        self.src.error(self.span.clone(), Some(&self.name), message)
    }

    /// The value of `key`, if present; `key` is allowed in this table from now on.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<Field<'a>> {
        self.asked.push(key);
        let (k, item) = self.items.get_key_value(key)?;
        if item.is_none() {
            return None;
        }
        Some(Field { src: self.src, table: self.name.clone(), key, key_span: k.span(), item })
    }

    pub(crate) fn require(&mut self, key: &'static str) -> Result<Field<'a>, ConfigError> {
        self.get(key).ok_or_else(|| self.error(format!("{key}: missing")))
    }

    /// Keys present but never asked for are errors. `hints` explain keys that moved or belong
    /// to another kind of entry.
    pub(crate) fn finish(self, hints: &[(&str, &str)]) -> Result<(), ConfigError> {
        for (key, item) in self.items.iter() {
            if item.is_none() || self.asked.contains(&key) {
                continue;
            }
            let span = self.items.key(key).and_then(|k| k.span());
            let what = if item.is_table_like() && !item.is_inline_table() { "table" } else { "key" };
            let mut message = format!("unknown {what} `{key}`");
            if let Some((_, hint)) = hints.iter().find(|(k, _)| *k == key) {
                message += &format!(": {hint}");
            } else if let Some(near) = self.asked.iter().find(|a| close(a, key)) {
                message += &format!(" (did you mean `{near}`?)");
            } else if !self.asked.is_empty() {
                let mut known = self.asked.clone();
                known.dedup();
                message += &format!(" (known here: {})", known.join(", "));
            }
            return Err(self.src.error(span, Some(&self.name), message));
        }
        Ok(())
    }

    /// The table `[key]`.
    pub(crate) fn table(&mut self, key: &'static str) -> Result<Option<Table<'a>>, ConfigError> {
        let Some(f) = self.get(key) else { return Ok(None) };
        f.table(format!("[{key}]")).map(Some)
    }

    /// The entries of `[[key]]` (or `key = [{…}, …]`), named `[[key]] #1`, `#2`…
    pub(crate) fn tables(&mut self, key: &'static str) -> Result<Vec<Table<'a>>, ConfigError> {
        let Some(f) = self.get(key) else { return Ok(Vec::new()) };
        let name = |i: usize| format!("[[{key}]] #{}", i + 1);
        match f.item {
            Item::ArrayOfTables(a) => {
                Ok(a.iter().enumerate().map(|(i, t)| Table::new(self.src, name(i), t.span(), t)).collect())
            }
            Item::Value(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| match v.as_inline_table() {
                    Some(t) => Ok(Table::new(self.src, name(i), v.span(), t)),
                    None => Err(f.err_at(v.span(), format!("#{} must be a table", i + 1))),
                })
                .collect(),
            _ => Err(f.err(format!("must be a list of tables: write each entry as [[{key}]]"))),
        }
    }
}

/// One key's value.
pub(super) struct Field<'a> {
    src: &'a Source<'a>,
    table: String,
    pub(crate) key: &'static str,
    key_span: Option<Range<usize>>,
    item: &'a Item,
}

impl<'a> Field<'a> {
    /// An error about this value, at the value.
    pub(crate) fn err(&self, message: String) -> ConfigError {
        self.err_at(self.item.span().or(self.key_span.clone()), message)
    }

    /// An error about part of this value (a list entry), at that part.
    pub(crate) fn err_at(&self, span: Option<Range<usize>>, message: String) -> ConfigError {
        self.src.error(span.or(self.key_span.clone()), Some(&self.table), format!("{}: {message}", self.key))
    }

    fn value(&self) -> Option<&'a Value> {
        self.item.as_value()
    }

    fn expected(&self, what: &str) -> ConfigError {
        self.err(format!("expected {what}, found {}", kind(self.item)))
    }

    pub(crate) fn boolean(&self) -> Result<bool, ConfigError> {
        self.value().and_then(Value::as_bool).ok_or_else(|| self.expected("true or false"))
    }

    pub(crate) fn string(&self) -> Result<&'a str, ConfigError> {
        self.value().and_then(Value::as_str).ok_or_else(|| self.expected("a string"))
    }

    /// An integer within `range` (both ends included).
    pub(crate) fn integer(&self, range: RangeInclusive<i64>) -> Result<i64, ConfigError> {
        let n = self.value().and_then(Value::as_integer).ok_or_else(|| self.expected("a whole number"))?;
        if !range.contains(&n) {
            return Err(self.err(format!("{n} is outside {}–{}", range.start(), range.end())));
        }
        Ok(n)
    }

    /// A number (integer or float) within `range`, in `unit` (for messages).
    pub(crate) fn number(&self, range: RangeInclusive<f64>, unit: &str) -> Result<f64, ConfigError> {
        let x = match self.value() {
            Some(Value::Float(f)) => *f.value(),
            Some(Value::Integer(i)) => *i.value() as f64,
            _ => return Err(self.expected("a number")),
        };
        if !x.is_finite() || !range.contains(&x) {
            let unit = if unit.is_empty() { String::new() } else { format!(" {unit}") };
            return Err(self.err(format!("{x}{unit} is outside {}–{}{unit}", range.start(), range.end())));
        }
        Ok(x)
    }

    /// A string parsed by `parse`, whose error says what is wrong with it.
    pub(crate) fn parsed<T>(&self, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, ConfigError> {
        let s = self.string()?;
        parse(s).map_err(|e| self.err(e))
    }

    /// A list of at most `max` entries, each read by `each` (whose error is placed at the entry).
    pub(crate) fn list<T>(
        &self,
        max: usize,
        mut each: impl FnMut(&Entry<'a>) -> Result<T, String>,
    ) -> Result<Vec<T>, ConfigError> {
        let a = self.value().and_then(Value::as_array).ok_or_else(|| self.expected("a list [ … ]"))?;
        if a.len() > max {
            return Err(self.err(format!("{} entries; at most {max}", a.len())));
        }
        a.iter().map(|v| each(&Entry { value: v }).map_err(|e| self.err_at(v.span(), e))).collect()
    }

    /// Entries, when the value is a list.
    pub fn entries(&self) -> Option<usize> {
        self.value().and_then(Value::as_array).map(|a| a.len())
    }

    /// A list of strings, each parsed by `parse`.
    pub(crate) fn strings<T>(
        &self,
        max: usize,
        mut parse: impl FnMut(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, ConfigError> {
        self.list(max, |e| parse(e.string()?))
    }

    /// The value as a table (`[key]`, or `key = { … }`), named `name` in errors.
    pub(crate) fn table(&self, name: String) -> Result<Table<'a>, ConfigError> {
        match self.item.as_table_like() {
            Some(t) => Ok(Table::new(self.src, name, self.item.span(), t)),
            None => Err(self.expected("a table")),
        }
    }

    pub(crate) fn is_table(&self) -> bool {
        self.item.is_table_like()
    }
}

/// One entry of a list.
pub(super) struct Entry<'a> {
    value: &'a Value,
}

impl<'a> Entry<'a> {
    pub(crate) fn string(&self) -> Result<&'a str, String> {
        self.value.as_str().ok_or_else(|| format!("expected a string, found {}", self.value.type_name()))
    }

    pub(crate) fn number(&self) -> Result<f64, String> {
        match self.value {
            Value::Float(f) => Ok(*f.value()),
            Value::Integer(i) => Ok(*i.value() as f64),
            v => Err(format!("expected a number, found {}", v.type_name())),
        }
    }

    pub(crate) fn numbers(&self) -> Result<Vec<f64>, String> {
        let a = self
            .value
            .as_array()
            .ok_or_else(|| format!("expected a list, found {}", self.value.type_name()))?;
        a.iter().map(|v| Entry { value: v }.number()).collect()
    }
}

fn kind(item: &Item) -> &'static str {
    match item {
        Item::Value(v) => v.type_name(),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "a list of tables",
        Item::None => "nothing",
    }
}

/// Two keys a typo apart: edit distance at most 2, and under a third of the key.
fn close(known: &str, typed: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (known.chars().collect(), typed.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    let d = prev[b.len()];
    d <= 2 && d * 3 < a.len().max(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_close_and_other_words_are_not() {
        assert!(close("rate_limit", "rate_limt"));
        assert!(close("minpoll", "minpol"));
        assert!(!close("edge", "device"));
        assert!(!close("pps", "gps"), "short words are never a typo of each other");
    }
}
