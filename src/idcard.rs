//! GB 11643-1999 citizen identity numbers: check digit, birth date and sex digit.

use chrono::NaiveDate;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The check character for the first 17 digits, `None` if they are not 17 digits.
pub fn check_char(first17: &str) -> Option<char> {
    let b = first17.as_bytes();
    if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = b.iter().zip(WEIGHTS).map(|(c, w)| u32::from(c - b'0') * w).sum();
    Some(CHECK[(sum % 11) as usize])
}

/// What is wrong with an 18-character ID number, judged against the recorded birth date and
/// sex code (`1` male, `2` female; other codes are not compared). Empty when it agrees.
pub fn problems(certno: &str, brdy: Option<NaiveDate>, gend: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    let c = certno.trim();
    if c.len() != 18 || !c.is_ascii() {
        out.push("证件号码不是18位");
        return out;
    }
    let (body, last) = c.split_at(17);
    match check_char(body) {
        None => {
            out.push("证件号码前17位不全是数字");
            return out;
        }
        Some(ch) if !last.eq_ignore_ascii_case(&ch.to_string()) => out.push("证件号码校验位错误"),
        _ => {}
    }
    let born = NaiveDate::parse_from_str(&c[6..14], "%Y%m%d").ok();
    match (born, brdy) {
        (None, _) => out.push("证件号码中的出生日期不存在"),
        (Some(b), Some(r)) if b != r => out.push("证件号码中的出生日期与出生日期字段不符"),
        _ => {}
    }
    let sex_digit = c.as_bytes()[16] - b'0';
    let sex = if sex_digit % 2 == 1 { "1" } else { "2" };
    if (gend == "1" || gend == "2") && gend != sex {
        out.push("证件号码的性别位与性别字段不符");
    }
    out
}

/// Builds a valid 18-digit number from a 6-digit area code, a birth date and a 3-digit
/// sequence (odd for men, even for women).
pub fn make(area: &str, brdy: NaiveDate, seq: u16) -> String {
    let body = format!("{area}{}{:03}", brdy.format("%Y%m%d"), seq % 1000);
    let ch = check_char(&body).expect("17 digits");
    format!("{body}{ch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digit_of_the_standard_example() {
        // GB 11643-1999 annex example: 11010519491231002X
        assert_eq!(check_char("11010519491231002"), Some('X'));
        let d = NaiveDate::from_ymd_opt(1949, 12, 31).unwrap();
        assert!(problems("11010519491231002X", Some(d), "2").is_empty());
        assert!(problems("11010519491231002x", Some(d), "2").is_empty());
    }

    #[test]
    fn each_disagreement_is_named() {
        let d = NaiveDate::from_ymd_opt(1949, 12, 31).unwrap();
        assert_eq!(problems("110105194912310021", Some(d), "2"), vec!["证件号码校验位错误"]);
        let other = NaiveDate::from_ymd_opt(1950, 1, 1).unwrap();
        assert_eq!(
            problems("11010519491231002X", Some(other), "2"),
            vec!["证件号码中的出生日期与出生日期字段不符"]
        );
        assert_eq!(problems("11010519491231002X", Some(d), "1"), vec!["证件号码的性别位与性别字段不符"]);
        assert_eq!(problems("1101051949123", Some(d), "1"), vec!["证件号码不是18位"]);
    }

    #[test]
    fn made_numbers_are_valid() {
        let d = NaiveDate::from_ymd_opt(1980, 2, 29).unwrap();
        let n = make("411402", d, 123);
        assert!(problems(&n, Some(d), "1").is_empty(), "{n}");
    }
}
