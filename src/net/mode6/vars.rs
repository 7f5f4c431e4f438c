//! Variable lists, the text inside mode 6 read responses: `name=value` pairs separated by
//! `", "`, a line break (`",\r\n"`) before a line would pass 72 characters, and a final
//! `"\r\n"`, as ntpd writes them and ntpq parses them.
//!
//! Values follow ntpd's conventions so ntpq formats them: strings in double quotes, refids and
//! addresses bare, NTP timestamps as `0xSSSSSSSS.FFFFFFFF`, times in milliseconds with six
//! decimals, integers in decimal (`reach` in hex).

/// Where ntpd breaks lines.
const MAX_LINE: usize = 72;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    /// Written `0x..`.
    Hex(u64),
    /// Fixed-point with this many decimals; a non-finite value leaves the variable out.
    Fixed(f64, usize),
    /// Written in double quotes (quotes and control characters inside become `?`).
    Quoted(String),
    /// Written as is (refids, addresses): only printable ASCII without `,` `"` `=` kept.
    Bare(String),
    /// An NTP timestamp.
    Timestamp(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Var {
    pub name: &'static str,
    pub value: Value,
}

impl Var {
    pub fn new(name: &'static str, value: Value) -> Var {
        Var { name, value }
    }

    /// `name=value`, or `None` for a value that cannot be written (not finite).
    fn render(&self) -> Option<String> {
        let v = match &self.value {
            Value::Int(i) => i.to_string(),
            Value::Hex(h) => format!("0x{h:x}"),
            Value::Fixed(f, _) if !f.is_finite() => return None,
            Value::Fixed(f, decimals) => format!("{f:.decimals$}"),
            Value::Quoted(s) => {
                let clean: String =
                    s.chars().map(|c| if c == '"' || !(' '..='~').contains(&c) { '?' } else { c }).collect();
                format!("\"{clean}\"")
            }
            Value::Bare(s) => {
                s.chars().filter(|c| c.is_ascii_graphic() && !matches!(c, ',' | '"' | '=')).collect()
            }
            Value::Timestamp(t) => format!("0x{:08x}.{:08x}", t >> 32, t & 0xffff_ffff),
        };
        Some(format!("{}={v}", self.name))
    }
}

/// The list as response data.
pub fn encode(vars: &[Var]) -> Vec<u8> {
    let mut out = String::new();
    let mut line = 0;
    for item in vars.iter().filter_map(Var::render) {
        if !out.is_empty() {
            out.push(',');
            if line + item.len() + 2 >= MAX_LINE {
                out.push_str("\r\n");
                line = 0;
            } else {
                out.push(' ');
                line += 2;
            }
        }
        line += item.len();
        out.push_str(&item);
    }
    if !out.is_empty() {
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// A read request whose variable list is not ASCII text.
#[derive(Debug, PartialEq, Eq)]
pub struct NotText;

/// The names a read request asks for (`"offset,frequency"`; a `=value` part is ignored),
/// empty for "all".
pub fn requested(data: &[u8]) -> Result<Vec<&str>, NotText> {
    let text = std::str::from_utf8(data).map_err(|_| NotText)?;
    // ntpq pads with NULs that the count may include.
    let text = text.trim_end_matches('\0');
    if !text.is_ascii() {
        return Err(NotText);
    }
    Ok(text
        .split(',')
        .map(|item| item.split_once('=').map_or(item, |(n, _)| n).trim())
        .filter(|n| !n.is_empty())
        .collect())
}

/// `vars` restricted to `names` in the order asked; the first unknown name is the error.
pub fn select<'a>(vars: Vec<Var>, names: &[&'a str]) -> Result<Vec<Var>, &'a str> {
    if names.is_empty() {
        return Ok(vars);
    }
    names.iter().map(|n| vars.iter().find(|v| v.name == *n).cloned().ok_or(*n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_like_ntpd() {
        let vars = vec![
            Var::new("version", Value::Quoted("stratum1 0.1.0".into())),
            Var::new("leap", Value::Int(0)),
            Var::new("refid", Value::Bare("PPS".into())),
            Var::new("reftime", Value::Timestamp(0xe9b2_e2c5_8c7e_f000)),
            Var::new("offset", Value::Fixed(-0.000439, 6)),
            Var::new("reach", Value::Hex(0xff)),
        ];
        let text = String::from_utf8(encode(&vars)).unwrap();
        assert_eq!(
            text,
            "version=\"stratum1 0.1.0\", leap=0, refid=PPS,\r\n\
             reftime=0xe9b2e2c5.8c7ef000, offset=-0.000439, reach=0xff\r\n"
        );
        assert!(text.lines().all(|l| l.len() <= MAX_LINE));
    }

    #[test]
    fn unwritable_values_are_left_out_and_strings_cleaned() {
        let vars = vec![
            Var::new("offset", Value::Fixed(f64::NAN, 6)),
            Var::new("srchost", Value::Quoted("a\"b\nc".into())),
            Var::new("refid", Value::Bare("P,P=S\"".into())),
        ];
        assert_eq!(String::from_utf8(encode(&vars)).unwrap(), "srchost=\"a?b?c\", refid=PPS\r\n");
        assert!(encode(&[]).is_empty());
    }

    #[test]
    fn requested_names() {
        assert_eq!(requested(b"").unwrap(), Vec::<&str>::new());
        assert_eq!(requested(b"offset").unwrap(), vec!["offset"]);
        assert_eq!(requested(b"offset, frequency\0\0").unwrap(), vec!["offset", "frequency"]);
        assert_eq!(requested(b"stratum=3,,leap").unwrap(), vec!["stratum", "leap"]);
        assert!(requested(&[0xff, 0xfe]).is_err());
        let all = vec![Var::new("a", Value::Int(1)), Var::new("b", Value::Int(2))];
        assert_eq!(select(all.clone(), &["b", "a"]).unwrap()[0].name, "b");
        assert_eq!(select(all.clone(), &["b", "zz"]), Err("zz"));
        assert_eq!(select(all, &[]).unwrap().len(), 2);
    }

    proptest! {
        #[test]
        fn encoded_lists_parse_back(values in proptest::collection::vec((any::<i64>(), "[ -~]{0,30}"), 0..30)) {
            const NAMES: [&str; 3] = ["a", "bb", "ccc"];
            let vars: Vec<Var> = values
                .iter()
                .enumerate()
                .map(|(i, (n, s))| {
                    if i % 2 == 0 {
                        Var::new(NAMES[i % 3], Value::Int(*n))
                    } else {
                        Var::new(NAMES[i % 3], Value::Quoted(s.clone()))
                    }
                })
                .collect();
            let text = String::from_utf8(encode(&vars)).unwrap();
            // Split as ntpq does: commas outside quotes.
            let mut items = vec![];
            let (mut cur, mut quoted) = (String::new(), false);
            for c in text.chars() {
                match c {
                    '"' => { quoted = !quoted; cur.push(c) }
                    ',' if !quoted => items.push(std::mem::take(&mut cur).trim().to_string()),
                    c => cur.push(c),
                }
            }
            if !cur.trim().is_empty() {
                items.push(cur.trim().to_string());
            }
            prop_assert_eq!(items.len(), vars.len());
            for (item, var) in items.iter().zip(&vars) {
                let (name, value) = item.split_once('=').unwrap();
                prop_assert_eq!(name, var.name);
                if let Value::Int(n) = var.value {
                    prop_assert_eq!(value.parse::<i64>().unwrap(), n);
                }
            }
        }
    }
}
