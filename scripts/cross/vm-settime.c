/*
 * vm-settime SECONDS: sets CLOCK_REALTIME of the emulated guest that scripts/cross/vm-e2e.sh
 * boots, so the ARM binary runs on a kernel clock past 2038 (the guest's RTC is not read early
 * enough for the kernel to take its time from it). It refuses to run anywhere but in that
 * guest: the guest's kernel command line carries the token below, a host's does not.
 * Built with 64-bit time_t (musl 1.2 on 32-bit ARM, glibc on arm64).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GUEST_TOKEN "stratum1-vm-guest"

int main(int argc, char **argv)
{
    char cmdline[4096] = {0};
    FILE *f = fopen("/proc/cmdline", "r");
    if (!f || !fgets(cmdline, sizeof cmdline, f) || !strstr(cmdline, GUEST_TOKEN)) {
        fprintf(stderr, "vm-settime: not in the test VM (no %s on the kernel command line)\n", GUEST_TOKEN);
        return 1;
    }
    if (argc != 2 || sizeof(time_t) < 8) {
        fprintf(stderr, "usage: vm-settime SECONDS (needs a 64-bit time_t)\n");
        return 2;
    }
    struct timespec ts = {.tv_sec = strtoll(argv[1], NULL, 10), .tv_nsec = 0};
    if (clock_settime(CLOCK_REALTIME, &ts) != 0) {
        perror("vm-settime: clock_settime");
        return 1;
    }
    /* What the clock reads now, for the caller to check. */
    clock_gettime(CLOCK_REALTIME, &ts);
    printf("%lld\n", (long long)ts.tv_sec);
    return 0;
}
