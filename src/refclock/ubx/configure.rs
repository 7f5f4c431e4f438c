//! The UBX CFG messages that put a u-blox receiver (M8 generation: NEO/LEA-M8T, M8N; the F9
//! series still accepts them) into a timing setup: stationary dynamic model, NMEA trimmed to the
//! sentences that carry time, the timing messages on, and survey-in or a fixed position (time
//! mode, timing variants only). Built here, written only by `stratum1 refclock configure
//! --confirm`; `--dry-run` prints them.

use super::frame::encode;
use super::messages::{CLASS_NAV, CLASS_TIM, ID_NAV_TIMELS, ID_NAV_TIMEUTC, ID_TIM_TP};

const CLASS_CFG: u8 = 0x06;
const ID_CFG_MSG: u8 = 0x01;
const ID_CFG_CFG: u8 = 0x09;
const ID_CFG_NAV5: u8 = 0x24;
const ID_CFG_TMODE2: u8 = 0x3D;
const CLASS_NMEA: u8 = 0xF0;

/// How the receiver learns its antenna's position (time mode: all satellites then serve time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Position {
    /// Leave the navigation mode alone (non-timing modules have no time mode).
    Unchanged,
    /// Average for at least `min_s` seconds until the 3D accuracy is better than `acc_m`.
    SurveyIn { min_s: u32, acc_m: f64 },
    /// A known position: degrees, metres above the ellipsoid, its accuracy in metres.
    Fixed { lat_deg: f64, lon_deg: f64, alt_m: f64, acc_m: f64 },
}

/// One message to send, with a line saying what it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfgMessage {
    pub what: String,
    pub bytes: Vec<u8>,
}

/// The whole timing setup, in the order to send it; `save` adds CFG-CFG (keep across power loss).
pub fn timing_setup(position: Position, save: bool) -> Result<Vec<CfgMessage>, String> {
    let mut out =
        vec![CfgMessage { what: "CFG-NAV5: stationary dynamic model".into(), bytes: nav5_stationary() }];
    // NMEA: keep what names the second (GGA, RMC, ZDA), drop the rest (less serial time).
    for (id, name, rate) in [
        (0x00, "GGA", 1),
        (0x04, "RMC", 1),
        (0x08, "ZDA", 1),
        (0x01, "GLL", 0),
        (0x02, "GSA", 0),
        (0x03, "GSV", 0),
        (0x05, "VTG", 0),
    ] {
        let verb = if rate == 0 { "off" } else { "on" };
        out.push(CfgMessage {
            what: format!("CFG-MSG: NMEA {name} {verb}"),
            bytes: msg_rate(CLASS_NMEA, id, rate),
        });
    }
    for (class, id, name) in [
        (CLASS_NAV, ID_NAV_TIMEUTC, "NAV-TIMEUTC"),
        (CLASS_NAV, ID_NAV_TIMELS, "NAV-TIMELS"),
        (CLASS_TIM, ID_TIM_TP, "TIM-TP"),
    ] {
        out.push(CfgMessage {
            what: format!("CFG-MSG: UBX {name} every second"),
            bytes: msg_rate(class, id, 1),
        });
    }
    match position {
        Position::Unchanged => {}
        Position::SurveyIn { min_s, acc_m } => {
            check_acc(acc_m)?;
            out.push(CfgMessage {
                what: format!("CFG-TMODE2: survey-in, at least {min_s} s, until better than {acc_m} m"),
                bytes: tmode2(1, 0, [0; 3], 0, min_s, (acc_m * 1000.0).round() as u32),
            });
        }
        Position::Fixed { lat_deg, lon_deg, alt_m, acc_m } => {
            check_acc(acc_m)?;
            if !(-90.0..=90.0).contains(&lat_deg) || !(-180.0..=180.0).contains(&lon_deg) {
                return Err(format!("position {lat_deg},{lon_deg}: latitude −90…90, longitude −180…180"));
            }
            if !(-1000.0..=20_000.0).contains(&alt_m) {
                return Err(format!("altitude {alt_m} m: expected −1000…20000 m"));
            }
            let deg = |d: f64| (d * 1e7).round() as i32;
            out.push(CfgMessage {
                what: format!("CFG-TMODE2: fixed position {lat_deg},{lon_deg}, {alt_m} m (±{acc_m} m)"),
                bytes: tmode2(
                    2,
                    0x0001,
                    [deg(lat_deg), deg(lon_deg), (alt_m * 100.0).round() as i32],
                    (acc_m * 1000.0).round() as u32,
                    0,
                    0,
                ),
            });
        }
    }
    if save {
        out.push(CfgMessage {
            what: "CFG-CFG: save to battery-backed RAM and flash".into(),
            bytes: save_all(),
        });
    }
    Ok(out)
}

fn check_acc(acc_m: f64) -> Result<(), String> {
    if acc_m.is_finite() && (0.001..=1000.0).contains(&acc_m) {
        Ok(())
    } else {
        Err(format!("accuracy {acc_m} m: expected 0.001…1000 m"))
    }
}

/// CFG-NAV5 with only the dynamic model applied (mask bit 0), model 2 = stationary.
fn nav5_stationary() -> Vec<u8> {
    let mut p = [0u8; 36];
    p[0..2].copy_from_slice(&0x0001u16.to_le_bytes());
    p[2] = 2;
    encode(CLASS_CFG, ID_CFG_NAV5, &p)
}

/// CFG-MSG: `rate` per navigation epoch on the current port.
fn msg_rate(class: u8, id: u8, rate: u8) -> Vec<u8> {
    encode(CLASS_CFG, ID_CFG_MSG, &[class, id, rate])
}

/// CFG-TMODE2: mode (0 off, 1 survey-in, 2 fixed), flags (bit 0: position in lat/lon/alt).
fn tmode2(
    mode: u8,
    flags: u16,
    pos: [i32; 3],
    fixed_acc_mm: u32,
    svin_min_s: u32,
    svin_acc_mm: u32,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(28);
    p.extend_from_slice(&[mode, 0]);
    p.extend_from_slice(&flags.to_le_bytes());
    for v in pos {
        p.extend_from_slice(&v.to_le_bytes());
    }
    for v in [fixed_acc_mm, svin_min_s, svin_acc_mm] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    encode(CLASS_CFG, ID_CFG_TMODE2, &p)
}

/// CFG-CFG: save the port, message, navigation and receiver-manager settings to BBR and flash.
fn save_all() -> Vec<u8> {
    let mut p = Vec::with_capacity(13);
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&0x0000_001Fu32.to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    p.push(0x03);
    encode(CLASS_CFG, ID_CFG_CFG, &p)
}

/// Hex bytes, space-separated, for `--dry-run`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::frame::decode;
    use super::*;

    #[test]
    fn bytes_of_the_stationary_model_and_a_message_rate() {
        let nav5 = nav5_stationary();
        assert_eq!(&nav5[..10], &[0xB5, 0x62, 0x06, 0x24, 0x24, 0x00, 0x01, 0x00, 0x02, 0x00]);
        assert_eq!(nav5.len(), 44);
        // GSV off: class F0 id 03 rate 0 — the frame every u-blox guide quotes.
        assert_eq!(
            msg_rate(0xF0, 0x03, 0),
            [0xB5, 0x62, 0x06, 0x01, 0x03, 0x00, 0xF0, 0x03, 0x00, 0xFD, 0x15]
        );
        assert_eq!(
            msg_rate(0x0D, 0x01, 1),
            [0xB5, 0x62, 0x06, 0x01, 0x03, 0x00, 0x0D, 0x01, 0x01, 0x19, 0x69]
        );
    }

    #[test]
    fn survey_in_and_fixed_position_payloads() {
        let svin = timing_setup(Position::SurveyIn { min_s: 3600, acc_m: 2.0 }, false).unwrap();
        let t = svin.iter().find(|m| m.what.starts_with("CFG-TMODE2")).unwrap();
        let f = decode(&t.bytes).unwrap();
        assert_eq!(f.payload.len(), 28);
        assert_eq!(f.payload[0], 1);
        assert_eq!(u32::from_le_bytes(f.payload[20..24].try_into().unwrap()), 3600);
        assert_eq!(u32::from_le_bytes(f.payload[24..28].try_into().unwrap()), 2000);

        let fixed =
            timing_setup(Position::Fixed { lat_deg: 52.5, lon_deg: -13.25, alt_m: 40.5, acc_m: 0.5 }, true)
                .unwrap();
        let t = fixed.iter().find(|m| m.what.starts_with("CFG-TMODE2")).unwrap();
        let p = decode(&t.bytes).unwrap().payload;
        assert_eq!((p[0], p[2]), (2, 1));
        assert_eq!(i32::from_le_bytes(p[4..8].try_into().unwrap()), 525_000_000);
        assert_eq!(i32::from_le_bytes(p[8..12].try_into().unwrap()), -132_500_000);
        assert_eq!(i32::from_le_bytes(p[12..16].try_into().unwrap()), 4050);
        assert_eq!(u32::from_le_bytes(p[16..20].try_into().unwrap()), 500);
        assert!(fixed.last().unwrap().what.starts_with("CFG-CFG"));
        // Every message is a well-formed frame.
        for m in fixed.iter().chain(&svin) {
            decode(&m.bytes).unwrap();
        }
        assert!(
            timing_setup(Position::Fixed { lat_deg: 95.0, lon_deg: 0.0, alt_m: 0.0, acc_m: 1.0 }, false)
                .is_err()
        );
        assert!(timing_setup(Position::SurveyIn { min_s: 60, acc_m: 0.0 }, false).is_err());
    }
}
