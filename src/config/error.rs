//! A configuration error an operator can act on.

/// Where and what: `FILE:LINE:COLUMN: TABLE: KEY: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}{}: {}{message}", pos(*line), pos(*column), table.as_ref().map(|t| format!("{t}: ")).unwrap_or_default())]
pub struct ConfigError {
    pub(crate) file: String,
    /// 1-based, when the error is about a place in the file.
    pub(crate) line: Option<usize>,
    /// 1-based, in characters.
    pub(crate) column: Option<usize>,
    /// The table the error is in, as written: `[server]`, `[[refclock]] #2`.
    pub(crate) table: Option<String>,
    /// Begins with the key when there is one.
    pub(crate) message: String,
}

fn pos(n: Option<usize>) -> String {
    n.map(|n| format!(":{n}")).unwrap_or_default()
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
