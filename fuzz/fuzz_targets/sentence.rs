#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| stratum1::fuzz::nmea_sentence(data));
