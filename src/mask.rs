//! Masking of personal data (contract: 严防信息外泄). Every export and every `detail` text
//! shows ID numbers and names masked unless an authorised caller asked otherwise.

/// `411402198001011234` → `4114**********1234`: the first 4 and last 4 characters kept.
pub fn certno(s: &str) -> String {
    let chars: Vec<char> = s.trim().chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars[..4].iter().chain(std::iter::repeat_n(&'*', n - 8)).chain(chars[n - 4..].iter()).collect()
}

/// `张三丰` → `张**`: the first character kept.
pub fn name(s: &str) -> String {
    let mut it = s.trim().chars();
    match it.next() {
        Some(first) => std::iter::once(first).chain(it.map(|_| '*')).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks() {
        assert_eq!(super::certno("411402198001011234"), "4114**********1234");
        assert_eq!(super::certno("1234"), "****");
        assert_eq!(super::name("张三"), "张*");
        assert_eq!(super::name("欧阳娜娜"), "欧***");
        assert_eq!(super::name(""), "");
    }
}
