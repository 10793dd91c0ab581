//! The value in an expiry e-mail's one-click unsubscribe link: which user, and a MAC that
//! only this installation can make, bound to this one purpose. It is not a secret of any
//! other kind (it can't sign in, read anything or do anything else), so it may travel in a
//! URL and in a mail header.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What the MAC covers besides the user id: a value made for anything else never fits.
const PURPOSE: &[u8] = b"apitokens unsubscribe: token expiry e-mails, v1\n";
/// 128 bits of the MAC, as hex.
const MAC_HEX: usize = 32;

fn mac(key: &[u8], user_id: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(PURPOSE);
    mac.update(user_id.to_string().as_bytes());
    mac
}

/// `<user id>.<MAC>` for user `user_id`.
pub fn sign(key: &[u8], user_id: i64) -> String {
    let tag = hex::encode(mac(key, user_id).finalize().into_bytes());
    format!("{user_id}.{}", &tag[..MAC_HEX])
}

/// The user a value was made for, if it was made here for this purpose.
pub fn verify(key: &[u8], value: &str) -> Option<i64> {
    let (id, tag) = value.trim().split_once('.')?;
    let user_id: i64 = id.parse().ok().filter(|id| *id > 0)?;
    if tag.len() != MAC_HEX {
        return None;
    }
    let tag = hex::decode(tag).ok()?;
    // Constant time, over the first 16 bytes.
    mac(key, user_id).verify_truncated_left(&tag).ok()?;
    Some(user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_works_for_its_user_only_and_with_this_key_only() {
        let key = b"one installation's secret key, long enough";
        let v = sign(key, 7);
        assert_eq!(verify(key, &v), Some(7));
        assert_eq!(verify(b"another installation", &v), None);
        // Another user's id with this MAC, or a changed MAC.
        let tag = v.split_once('.').unwrap().1;
        assert_eq!(verify(key, &format!("8.{tag}")), None);
        let mut flipped = v.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(verify(key, &flipped), None);
        for junk in [
            "",
            "7",
            "7.",
            ".abc",
            "x.y",
            "-7.00",
            &format!("7.{}", "g".repeat(32)),
            &format!("{v}0"),
        ] {
            assert_eq!(verify(key, junk), None, "{junk:?}");
        }
    }
}
