/* SPDX-License-Identifier: MIT */
/*
 * cli.c - the one place where the subcommands parse flags, sizes, durations,
 * positions and times, resolve directories, and turn an errno into the one
 * line a user can act on (docs/HACKING.md, "Style").
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct cli G = { .cmd = "" };
volatile sig_atomic_t cli_stop;

/* --- messages ----------------------------------------------------------------- */
__attribute__((format(printf, 1, 0))) static void vmsg(const char *fmt, va_list ap)
{
	fprintf(stderr, "spillway%s%s: ", G.cmd[0] ? " " : "", G.cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

int cli_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "spillway%s%s: ", G.cmd[0] ? " " : "", G.cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see: spillway %s --help)\n", G.cmd[0] ? G.cmd : "");
	return CLI_USAGE;
}

void cli_dirs(void)
{
	if ((G.shm_flag && !*G.shm_flag) || (G.data_flag && !*G.data_flag))
		cli_err("warning: an empty --shm-dir / --data-dir means the default");
	snprintf(G.shm_dir, sizeof(G.shm_dir), "%s", spw_shm_dir(G.shm_flag));
	snprintf(G.data_dir, sizeof(G.data_dir), "%s", spw_data_dir(G.data_flag));
	/* Files below it (segments, group positions) are then reached from a
	 * held fd, never through a symlink (spill/files.c). Best effort: a
	 * data dir not made yet is used by name, still O_NOFOLLOW at the leaf. */
	if (seg_trust_root(G.data_dir)) {
	}
}

const char *cli_dir_flags(void)
{
	static char buf[2 * PATH_MAX + 32];
	size_t n = 0;

	buf[0] = '\0';
	if (G.shm_flag && *G.shm_flag)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " --shm-dir %s", G.shm_flag);
	if (G.data_flag && *G.data_flag && n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - n, " --data-dir %s", G.data_flag);
	return buf;
}

int cli_name_check(const char *what, const char *name)
{
	if (spw_topic_name_check(name) == 0)
		return CLI_OK;
	return cli_usage("invalid %s name \"%s\": use 1-%d characters of A-Z a-z 0-9 . _ -, "
			 "not starting with '.'",
			 what, name, SPW_NAME_MAX);
}

int cli_topic_arg(int argc, char **argv, const char **name)
{
	if (optind >= argc)
		return cli_usage("missing the topic NAME");
	if (argc - optind > 1)
		return cli_usage("unexpected argument \"%s\"", argv[optind + 1]);
	*name = argv[optind];
	return cli_name_check("topic", *name);
}

/* --- values ---------------------------------------------------------------------- */
int cli_size(const char *opt, const char *s, uint64_t *out)
{
	if (seg_parse_size(s, out) == 0)
		return CLI_OK;
	return cli_usage("%s: bad size \"%s\" (a number with an optional K, M, G or T suffix, "
			 "e.g. 64M)",
			 opt, s);
}

int cli_duration(const char *opt, const char *s, uint64_t *ms)
{
	if (seg_parse_duration_ms(s, ms) == 0)
		return CLI_OK;
	return cli_usage("%s: bad duration \"%s\" (a number with ms, s, m, h or d, e.g. 30s, "
			 "14d; a bare number is ms)",
			 opt, s);
}

int cli_count(const char *opt, const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (s && isdigit((unsigned char)*s)) {
		unsigned long long v = strtoull(s, &end, 10);

		if (!errno && !*end) {
			*out = v;
			return CLI_OK;
		}
	}
	return cli_usage("%s: bad number \"%s\" (a non-negative integer)", opt, s ? s : "");
}

/* Digits of a fraction into nanoseconds (at most 9 kept). */
static const char *frac_ns(const char *p, uint64_t *ns)
{
	uint64_t v = 0, scale = 100000000;

	for (; isdigit((unsigned char)*p); p++, scale /= 10)
		if (scale)
			v += (uint64_t)(*p - '0') * scale;
	*ns = v;
	return p;
}

static int iso_time(const char *s, uint64_t *ns)
{
	struct tm tm = { 0 };
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, oh, om;
	uint64_t frac = 0;
	int64_t off = 0;
	const char *p;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -EINVAL;
	p = s + n;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5)
			return -EINVAL;
		p += 1 + n;
		if (*p == ':') {
			if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]))
				return -EINVAL;
			sec = (p[1] - '0') * 10 + (p[2] - '0');
			p += 3;
			if (*p == '.' || *p == ',')
				p = frac_ns(p + 1, &frac);
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;

		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) == 2 && n == 5)
			p += 1 + n;
		else if (sscanf(p + 1, "%2d%2d%n", &oh, &om, &n) == 2 && n == 4)
			p += 1 + n;
		else
			return -EINVAL;
		if (oh > 23 || om > 59)
			return -EINVAL;
		off = sign * ((int64_t)oh * 3600 + om * 60);
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1 || (int64_t)t - off < 0)
		return -EINVAL;
	*ns = (uint64_t)((int64_t)t - off) * 1000000000ull + frac;
	return 0;
}

int cli_parse_time(const char *s, uint64_t *ns)
{
	const char *p = s;
	uint64_t sec = 0, frac = 0, ms;

	if (!s || !*s)
		return -EINVAL;
	if (*s == '-') { /* @-10m: that long ago */
		uint64_t now = cli_now_ns();

		if (seg_parse_duration_ms(s + 1, &ms) || ms * 1000000ull > now)
			return -EINVAL;
		*ns = now - ms * 1000000ull;
		return 0;
	}
	if (strchr(s, '-') || strchr(s, 'T'))
		return iso_time(s, ns);
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		sec = sec * 10 + (uint64_t)(*p - '0');
		if (sec > 1ull << 34)
			return -EINVAL;
	}
	if (*p == '.')
		p = frac_ns(p + 1, &frac);
	if (*p)
		return -EINVAL;
	*ns = sec * 1000000000ull + frac;
	return 0;
}

int cli_where(const char *opt, const char *s, unsigned flags, struct where *w)
{
	bool ends_allowed = flags & WHERE_ENDS;

	memset(w, 0, sizeof(*w));
	if (ends_allowed && (!strcmp(s, "earliest") || !strcmp(s, "oldest"))) {
		w->kind = W_EARLIEST;
		return CLI_OK;
	}
	if (ends_allowed && !strcmp(s, "latest")) {
		w->kind = W_LATEST;
		return CLI_OK;
	}
	if (s[0] == '@') {
		if (cli_parse_time(s + 1, &w->time_ns))
			return cli_usage("%s: bad time \"%s\" (@SECONDS[.fraction], "
					 "@2026-11-24T22:00:00Z or @-DURATION like @-10m)",
					 opt, s);
		w->kind = W_TIME;
		return CLI_OK;
	}
	if (isdigit((unsigned char)s[0])) {
		uint64_t v;
		char *end;

		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno || *end || v > (uint64_t)INT64_MAX)
			return cli_usage("%s: bad position \"%s\"", opt, s);
		if ((v & 7) && !(flags & WHERE_ANY_POS))
			return cli_usage("%s: position %llu is not a record boundary (records start at "
					 "multiples of 8; positions come from consume --format json "
					 "or dump)",
					 opt, (unsigned long long)v);
		w->kind = W_POSITION;
		w->position = (int64_t)v;
		return CLI_OK;
	}
	return cli_usage("%s: bad value \"%s\" (%sa position, or @TIME)", opt, s,
			 ends_allowed ? "earliest, latest, " : "");
}

int cli_format(const char *s, unsigned allowed, enum fmt *out)
{
	static const char *names[] = { "lines", "raw", "lenpfx", "json", "hex" };
	char list[64] = "";

	for (unsigned i = 0; i < 5; i++) {
		if (!(allowed & (1u << i)))
			continue;
		if (!strcmp(s, names[i])) {
			*out = (enum fmt)i;
			return CLI_OK;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", list[0] ? "|" : "",
			 names[i]);
	}
	return cli_usage("--format: unknown format \"%s\" (use %s)", s, list);
}

/* --- time and sizes ----------------------------------------------------------------- */
/* The one clock (ring/clock.c), under the names the subcommands use. */
uint64_t cli_now_ns(void)
{
	return ring_realtime_ns();
}

uint64_t cli_mono_ns(void)
{
	return ring_monotonic_ns();
}

void cli_iso8601(uint64_t ns, char *buf, size_t n)
{
	time_t s = (time_t)(ns / 1000000000ull);
	struct tm tm;
	char d[32];

	gmtime_r(&s, &tm);
	strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%s.%09lluZ", d, (unsigned long long)(ns % 1000000000ull));
}

void cli_human(uint64_t bytes, char *buf, size_t n)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%llu B", (unsigned long long)bytes);
	else if (bytes % (1ull << (10 * u)) == 0)
		snprintf(buf, n, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, n, "%.1f %s", v, unit[u]);
}

static void on_signal(int sig)
{
	cli_stop = sig;
}

/* A ring file cut short under this command (README "Limits"): touching a
 * lost page raises SIGBUS. Say so in words, then end the command by the
 * signal as it would have ended (exit status 135 in a shell), so scripts
 * still see it. A SIGBUS sent by kill() (si_code <= 0) ends it without the
 * words. write(), signal() and raise() only: async-signal safe. */
static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	static const char head[] = "spillway: SIGBUS at 0x",
			  tail[] = ": a file this command maps was cut short under it (a topic's "
				   "ring truncated while in use?); stopping\n";
	char hex[16];
	uintptr_t a = (uintptr_t)si->si_addr;
	int n = 0;

	(void)uc;
	if (si->si_code > 0) {
		do
			hex[sizeof(hex) - 1 - n++] = "0123456789abcdef"[a & 15];
		while ((a >>= 4) && n < (int)sizeof(hex));
		if (write(2, head, sizeof(head) - 1) >= 0 &&
		    write(2, hex + sizeof(hex) - n, (size_t)n) >= 0)
			(void)!write(2, tail, sizeof(tail) - 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

void cli_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = NULL;
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
}

pid_t cli_fork_tied(void)
{
	pid_t parent = getpid(), pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	return 0;
}

void cli_fmt_ns(char *buf, size_t len, double ns)
{
	if (ns < 1e3)
		snprintf(buf, len, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.2f us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", ns / 1e9);
}
