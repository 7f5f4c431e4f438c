//! The NMEA a simulated receiver sends for one second: RMC, GGA, the usual GSA/GSV noise and
//! ZDA, with correct checksums, as an MT3339 or u-blox at 9600 baud would.

use crate::vocab::Time;

/// `*HH\r\n`-terminated sentence from its body (between `$` and `*`).
pub(crate) fn sentence(body: &str) -> String {
    let sum = body.bytes().fold(0u8, |a, b| a ^ b);
    format!("${body}*{sum:02X}\r\n")
}

/// The burst describing UTC second `utc`; without a fix RMC says `V` and GGA quality 0.
pub(crate) fn burst(utc: Time, fix: bool) -> String {
    let d = utc.to_utc();
    let hms = format!("{:02}{:02}{:02}", d.hour, d.minute, d.second);
    let date = format!("{:02}{:02}{:02}", d.day, d.month, d.year.rem_euclid(100));
    let mut out = String::with_capacity(512);
    if fix {
        out += &sentence(&format!("GPRMC,{hms}.000,A,5230.1234,N,01322.5678,E,0.02,31.66,{date},,,A"));
        out += &sentence(&format!("GPGGA,{hms}.000,5230.1234,N,01322.5678,E,1,09,0.92,41.3,M,44.7,M,,"));
        out += &sentence("GPGSA,A,3,02,05,07,09,13,15,20,28,30,,,,1.62,0.92,1.33");
    } else {
        out += &sentence(&format!("GPRMC,{hms}.000,V,,,,,0.00,0.00,{date},,,N"));
        out += &sentence(&format!("GPGGA,{hms}.000,,,,,0,00,,,M,,M,,"));
        out += &sentence("GPGSA,A,1,,,,,,,,,,,,,,,");
    }
    out += &sentence("GPGSV,3,1,11,02,63,283,43,05,41,069,41,07,22,311,35,09,11,214,29");
    out += &sentence("GPGSV,3,2,11,13,56,166,44,15,19,128,33,20,70,045,46,28,05,341,");
    out += &sentence("GPGSV,3,3,11,30,33,254,38,18,02,097,,24,01,010,");
    out += &sentence(&format!("GPZDA,{hms}.00,{:02},{:02},{:04},00,00", d.day, d.month, d.year));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_checksum() {
        // The textbook example sentence.
        assert_eq!(
            sentence("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
        );
    }

    #[test]
    fn burst_names_the_second_and_the_fix() {
        let t = Time::from_utc(2026, 11, 26, 19, 2, 3, 0);
        let b = burst(t, true);
        assert!(b.starts_with("$GPRMC,190203.000,A,"), "{b}");
        assert!(b.contains(",261126,"));
        assert!(b.contains("$GPZDA,190203.00,26,11,2026,00,00*"));
        assert_eq!(b.lines().count(), 7);
        for l in b.lines() {
            let (body, sum) = l[1..].split_once('*').unwrap();
            assert_eq!(u8::from_str_radix(sum, 16).unwrap(), body.bytes().fold(0, |a, b| a ^ b));
        }
        assert!(burst(t, false).starts_with("$GPRMC,190203.000,V,"));
        // About half a second of line time at 9600 baud.
        assert!((350..520).contains(&b.len()), "{}", b.len());
    }
}
