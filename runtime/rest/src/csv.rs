//! A small RFC 4180 CSV reader for `Content-Type: text/csv` bodies (CSV output is rendered by
//! PostgreSQL, see [`crate::sql`]).

use crate::error::RestError;

/// Records of `(value, was_quoted)` fields. Accepts `\n` and `\r\n` line ends.
pub fn read(text: &str) -> Result<Vec<Vec<(String, bool)>>, RestError> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !quoted => {
                in_quotes = true;
                quoted = true;
            }
            ',' => record.push((
                std::mem::take(&mut field),
                std::mem::replace(&mut quoted, false),
            )),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push((
                    std::mem::take(&mut field),
                    std::mem::replace(&mut quoted, false),
                ));
                records.push(std::mem::take(&mut record));
            }
            '"' => return Err(RestError::InvalidBody("stray quote in CSV body".into())),
            c => field.push(c),
        }
    }
    if in_quotes {
        return Err(RestError::InvalidBody(
            "unterminated quote in CSV body".into(),
        ));
    }
    if !field.is_empty() || quoted || !record.is_empty() {
        record.push((field, quoted));
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_and_line_ends() {
        let r = super::read("a,\"b \"\"c\"\"\"\r\n1,\n").unwrap();
        assert_eq!(r[0][1], ("b \"c\"".to_string(), true));
        assert_eq!(r[1], vec![("1".to_string(), false), (String::new(), false)]);
        assert!(super::read("a,\"b").is_err());
    }
}
