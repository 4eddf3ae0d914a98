//! The identifiers hotdesk's limits are keyed by, each in one canonical spelling: extensions
//! (desk phones and accounts) and source addresses.
//!
//! Every limit the directory keeps (failures per account, per desk) is keyed by the extension,
//! so two spellings of one phone must never become two keys: `5401`, `05401`, `005401` and
//! `+5401` would otherwise be four desks with four allowances of guesses (found by an outside
//! test: 60 guesses under 8 spellings locked nothing, and logins were recorded at the made-up
//! devices `05401` and `+5404`). An extension is therefore accepted only in its canonical form
//! (digits, no leading zero, no sign, at most [`MAX_DIGITS`]) wherever it enters: the SIP From
//! or P-Asserted-Identity user, the API's paths and bodies, the command line and the keys a
//! caller types. Anything else is refused, never rewritten: a phone that calls as `05401` is
//! not desk 5401 as far as hotdesk can tell, and guessing what it meant would reopen the hole.

use std::fmt;
use std::net::IpAddr;

/// Longest extension, in digits (E.164 numbers have at most 15; 20 leaves room for prefixes).
pub const MAX_DIGITS: usize = 20;

/// An extension in canonical form: 1-20 ASCII digits, the first not `0`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Extension(String);

/// Why a text is not an extension. The message never repeats the text: a caller's account
/// entry may hold a PIN typed in the wrong place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionError {
    /// Nothing was given.
    #[error("is empty")]
    Empty,
    /// Longer than [`MAX_DIGITS`].
    #[error("is longer than {MAX_DIGITS} digits")]
    TooLong,
    /// A character other than a digit (a sign, a letter, white space …).
    #[error("must be digits only (no sign, spaces or letters)")]
    NotDigits,
    /// Starts with `0`: the same number spelt another way.
    #[error("must not start with 0")]
    LeadingZero,
}

impl Extension {
    /// Accepts `text` only if it is already canonical.
    pub fn parse(text: &str) -> Result<Extension, ExtensionError> {
        if text.is_empty() {
            Err(ExtensionError::Empty)
        } else if !text.bytes().all(|b| b.is_ascii_digit()) {
            Err(ExtensionError::NotDigits)
        } else if text.len() > MAX_DIGITS {
            Err(ExtensionError::TooLong)
        } else if text.starts_with('0') {
            Err(ExtensionError::LeadingZero)
        } else {
            Ok(Extension(text.to_owned()))
        }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number the digits spell (every canonical extension fits in a `u128`).
    pub fn number(&self) -> u128 {
        self.0.parse().unwrap_or(u128::MAX)
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Extension {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Extension {
    type Err = ExtensionError;
    fn from_str(s: &str) -> Result<Extension, ExtensionError> {
        Extension::parse(s)
    }
}

impl From<Extension> for String {
    fn from(e: Extension) -> String {
        e.0
    }
}

/// A source address as per-source limits count it: an IPv4 address as itself (also when it
/// arrives as an IPv4-mapped IPv6 address), an IPv6 address by its /64, since whoever has one
/// address of a /64 usually has all of them. Written `192.0.2.7` or `2001:db8:1:2::/64`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceKey(String);

/// Why a text is not a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("want an IP address or an IPv6 /64")]
pub struct SourceKeyError;

impl SourceKey {
    /// The key `ip` is counted under.
    pub fn of(ip: IpAddr) -> SourceKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => SourceKey(v4.to_string()),
            IpAddr::V6(v6) => {
                let net = ipnet::Ipv6Net::new(v6, 64).expect("64 is a valid IPv6 prefix");
                SourceKey(net.trunc().to_string())
            }
        }
    }

    /// An address (any spelling `IpAddr` parses), or an IPv6 /64.
    pub fn parse(text: &str) -> Result<SourceKey, SourceKeyError> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(SourceKey::of(ip));
        }
        match text.parse::<ipnet::Ipv6Net>() {
            Ok(net) if net.prefix_len() == 64 => Ok(SourceKey(net.trunc().to_string())),
            _ => Err(SourceKeyError),
        }
    }

    /// The written form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_canonical_spelling_is_an_extension() {
        assert_eq!(Extension::parse("5401").unwrap().as_str(), "5401");
        assert_eq!(Extension::parse("1").unwrap().number(), 1);
        for (text, error) in [
            ("", ExtensionError::Empty),
            ("05401", ExtensionError::LeadingZero),
            ("005401", ExtensionError::LeadingZero),
            ("0", ExtensionError::LeadingZero),
            ("+5401", ExtensionError::NotDigits),
            ("-5401", ExtensionError::NotDigits),
            (" 5401", ExtensionError::NotDigits),
            ("5401 ", ExtensionError::NotDigits),
            ("54O1", ExtensionError::NotDigits),
            ("5401#", ExtensionError::NotDigits),
            ("５４０１", ExtensionError::NotDigits),
            ("123456789012345678901", ExtensionError::TooLong),
        ] {
            assert_eq!(Extension::parse(text), Err(error), "{text:?}");
        }
        assert!(Extension::parse("12345678901234567890").is_ok());
    }

    #[test]
    fn one_source_has_one_key_however_it_is_written() {
        let v4 = SourceKey::parse("192.0.2.7").unwrap();
        assert_eq!(SourceKey::parse("::ffff:192.0.2.7").unwrap(), v4);
        assert_eq!(SourceKey::of("::ffff:c000:207".parse().unwrap()), v4);
        let v6 = SourceKey::parse("2001:db8:1:2::1").unwrap();
        assert_eq!(v6.as_str(), "2001:db8:1:2::/64");
        assert_eq!(SourceKey::parse("2001:0db8:0001:0002:ffff::9").unwrap(), v6);
        assert_eq!(SourceKey::parse("2001:db8:1:2::/64").unwrap(), v6);
        assert_ne!(SourceKey::parse("2001:db8:1:3::1").unwrap(), v6);
        assert!(SourceKey::parse("2001:db8::/48").is_err());
        assert!(SourceKey::parse("5401").is_err());
        assert!(SourceKey::parse("").is_err());
    }
}
