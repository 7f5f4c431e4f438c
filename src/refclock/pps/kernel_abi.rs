//! The RFC 2783 PPS ioctls as the Linux kernel defines them (`include/uapi/linux/pps.h`).
//!
//! Written here rather than taken from the `pps-time` crate: its request numbers are constants
//! computed for 64-bit targets (`0x800870a1`…). The kernel encodes the size of a *pointer* in
//! them (`_IOR('p', 0xa1, struct pps_kparams *)`), so on 32-bit Raspberry Pi OS (armhf) the right
//! numbers are `0x800470a1`…, and `pps-time` gets ENOTTY there. We compute them for the target
//! and check the struct layouts against the kernel ABI in the tests below.

use std::os::fd::RawFd;

use crate::vocab::Time;

pub(crate) const PPS_CAPTUREASSERT: i32 = 0x01;
pub(crate) const PPS_CAPTURECLEAR: i32 = 0x02;
pub(crate) const PPS_CANWAIT: i32 = 0x100;
pub(crate) const PPS_TSFMT_TSPEC: i32 = 0x1000;
pub(crate) const PPS_TIME_INVALID: u32 = 1;
pub(crate) const PPS_API_VERS_1: i32 = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PpsKtime {
    pub(crate) sec: i64,
    pub(crate) nsec: i32,
    pub(crate) flags: u32,
}

impl PpsKtime {
    pub(crate) fn to_time(self) -> Time {
        Time::from_unix_nanos(self.sec * 1_000_000_000 + self.nsec as i64)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PpsKinfo {
    pub(crate) assert_sequence: u32,
    pub(crate) clear_sequence: u32,
    pub(crate) assert_tu: PpsKtime,
    pub(crate) clear_tu: PpsKtime,
    pub(crate) current_mode: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PpsKparams {
    pub(crate) api_version: i32,
    pub(crate) mode: i32,
    pub(crate) assert_off_tu: PpsKtime,
    pub(crate) clear_off_tu: PpsKtime,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PpsFdata {
    pub(crate) info: PpsKinfo,
    pub(crate) timeout: PpsKtime,
}

const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

/// Linux `_IOC(dir, 'p', nr, size)` for the generic ioctl layout (x86, ARM, RISC-V).
pub(crate) const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((b'p' as u64) << 8) | nr
}

const PTR: usize = std::mem::size_of::<*const u8>();
pub(crate) const PPS_GETPARAMS: u64 = ioc(IOC_READ, 0xa1, PTR);
pub(crate) const PPS_SETPARAMS: u64 = ioc(IOC_WRITE, 0xa2, PTR);
pub(crate) const PPS_GETCAP: u64 = ioc(IOC_READ, 0xa3, PTR);
pub(crate) const PPS_FETCH: u64 = ioc(IOC_READ | IOC_WRITE, 0xa4, PTR);

fn ioctl<T>(fd: RawFd, request: u64, arg: &mut T) -> std::io::Result<()> {
    // SAFETY: each request above reads/writes exactly one `T` (checked against the kernel ABI in
    // the tests), which lives for the call; the fd is the caller's open PPS device.
    let rc = unsafe { libc::ioctl(fd, request as _, arg as *mut T) };
    if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

pub(crate) fn get_cap(fd: RawFd) -> std::io::Result<i32> {
    let mut cap: i32 = 0;
    ioctl(fd, PPS_GETCAP, &mut cap)?;
    Ok(cap)
}

pub(crate) fn get_params(fd: RawFd) -> std::io::Result<PpsKparams> {
    let mut p = PpsKparams::default();
    ioctl(fd, PPS_GETPARAMS, &mut p)?;
    Ok(p)
}

/// Needs CAP_SYS_TIME in the kernel (it changes only what is captured, never the clock).
pub(crate) fn set_params(fd: RawFd, params: &PpsKparams) -> std::io::Result<()> {
    let mut p = *params;
    ioctl(fd, PPS_SETPARAMS, &mut p)
}

/// Waits up to `timeout_ns` for the next event; ETIMEDOUT when none came.
pub(crate) fn fetch(fd: RawFd, timeout_ns: i64) -> std::io::Result<PpsKinfo> {
    let mut data = PpsFdata {
        info: PpsKinfo::default(),
        timeout: PpsKtime {
            sec: timeout_ns.div_euclid(1_000_000_000),
            nsec: timeout_ns.rem_euclid(1_000_000_000) as i32,
            flags: 0,
        },
    };
    ioctl(fd, PPS_FETCH, &mut data)?;
    Ok(data.info)
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    #[test]
    fn struct_layouts_match_the_kernel_abi() {
        // pps.h: __s64 sec; __s32 nsec; __u32 flags.
        assert_eq!(size_of::<PpsKtime>(), 16);
        assert_eq!(offset_of!(PpsKtime, nsec), 8);
        assert_eq!(offset_of!(PpsKtime, flags), 12);
        // pps_kinfo: two __u32 sequences, two pps_ktime, int mode, padded to 8.
        assert_eq!(offset_of!(PpsKinfo, assert_tu), 8);
        assert_eq!(offset_of!(PpsKinfo, clear_tu), 24);
        assert_eq!(offset_of!(PpsKinfo, current_mode), 40);
        assert_eq!(size_of::<PpsKinfo>(), 48);
        assert_eq!(offset_of!(PpsKparams, assert_off_tu), 8);
        assert_eq!(offset_of!(PpsKparams, clear_off_tu), 24);
        assert_eq!(size_of::<PpsKparams>(), 40);
        assert_eq!(offset_of!(PpsFdata, timeout), 48);
        assert_eq!(size_of::<PpsFdata>(), 64);
    }

    #[test]
    fn ioctl_numbers_match_the_kernel() {
        // The values `linux/pps.h` yields on 64-bit targets (and pps-time hard-codes)...
        assert_eq!(ioc(IOC_READ, 0xa1, 8), 0x800870a1);
        assert_eq!(ioc(IOC_WRITE, 0xa2, 8), 0x400870a2);
        assert_eq!(ioc(IOC_READ, 0xa3, 8), 0x800870a3);
        assert_eq!(ioc(IOC_READ | IOC_WRITE, 0xa4, 8), 0xc00870a4);
        // ...and on 32-bit ARM, where a pointer is 4 bytes.
        assert_eq!(ioc(IOC_READ, 0xa1, 4), 0x800470a1);
        assert_eq!(ioc(IOC_READ | IOC_WRITE, 0xa4, 4), 0xc00470a4);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(PPS_FETCH, 0xc00870a4);
        #[cfg(target_pointer_width = "32")]
        assert_eq!(PPS_FETCH, 0xc00470a4);
    }

    #[test]
    fn ktime_converts_to_time() {
        let t = PpsKtime { sec: 1_790_000_000, nsec: 123_456_789, flags: 0 }.to_time();
        assert_eq!(t.unix_secs(), 1_790_000_000);
        assert_eq!(t.subsec_nanos(), 123_456_789);
    }

    #[test]
    fn a_regular_file_is_not_a_pps_device() {
        use std::os::fd::AsRawFd;
        let f = tempfile::tempfile().unwrap();
        let e = get_cap(f.as_raw_fd()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
    }
}
