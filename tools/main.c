/* SPDX-License-Identifier: MIT */
/*
 * main.c - `spillway`: git-style subcommands (one file each, tools/cmd_*.c).
 * Global --shm-dir / --data-dir may come before the subcommand too.
 */
#include "cli.h"

#include <string.h>

static const char usage[] =
	"usage: spillway [--shm-dir DIR] [--data-dir DIR] COMMAND [ARGS]\n"
	"Spillway: a shared-memory log bus for one Linux host (Kafka's model; spillwayd\n"
	"spills each topic's ring to segment files).\n"
	"Commands:\n"
	"  topic create|list|describe|delete  manage topics\n"
	"  produce NAME [FILE...]             append records (lines, raw, lenpfx) from stdin or files\n"
	"  consume NAME                       read records, from disk then live (--follow, --group)\n"
	"  replay NAME --from X [--to Y]      a bounded batch read with a progress bar\n"
	"  stat [NAME]                        counters, rates, disk, daemon, group lag\n"
	"                                     (--json, --prometheus, --watch SEC)\n"
	"  verify NAME                        check every CRC and header of the disk log\n"
	"  dump NAME --from X                 records with their headers, for debugging\n"
	"  demo                               the whole pipeline on temp dirs (make demo)\n"
	"  bench                              measure this machine: producers x consumers x sizes,\n"
	"                                     throughput and latency percentiles (--json)\n"
	"  bridge kafka NAME --brokers LIST   forward a topic to Apache Kafka, at least once\n"
	"  help [COMMAND | positions | daemon]  help on a command or a topic\n"
	"Run 'spillway COMMAND --help' for a command's flags; docs/cli.md has examples.\n" CLI_COMMON_HELP;

static const char help_positions[] =
	"Positions and times (--from, --to):\n"
	"  earliest      the oldest record retention kept (disk, else ring)\n"
	"  latest        only records produced from now on\n"
	"  POSITION      a byte offset in the log where a record starts (a multiple of 8;\n"
	"                consume --format json and dump print them)\n"
	"  @SECONDS      Unix time, with an optional fraction: @1764021600.25\n"
	"  @ISO-8601     @2026-11-24T22:00:00Z, @2026-11-24T23:00:00.5+01:00, @2026-11-24\n"
	"  @-DURATION    that long ago: @-10m, @-2h, @-1d\n"
	"Sizes take K, M, G, T suffixes (powers of 1024); durations ms, s, m, h, d.\n";

static const char help_daemon[] =
	"spillwayd spills every topic's ring to segment files and reclaims the ring.\n"
	"  spillwayd [--data-dir DIR] [--shm-dir DIR] [--foreground]\n"
	"            [--log-level error|warn|info|debug] [--config FILE]\n"
	"Without a running spillwayd, producers block once the ring is full.\n"
	"Signals: TERM/INT spill everything, fdatasync, exit 0; HUP rereads the config and\n"
	"each topic.conf (flush, retention, unblock). See docs/daemon.md.\n";

static const struct {
	const char *name;
	int (*fn)(int, char **);
} cmds[] = {
	{ "topic", cmd_topic },     { "produce", cmd_produce }, { "consume", cmd_consume },
	{ "replay", cmd_replay },   { "stat", cmd_stat },       { "verify", cmd_verify },
	{ "dump", cmd_dump },       { "demo", cmd_demo },       { "bench", cmd_bench },
	{ "bridge", cmd_bridge },
};

static int run(const char *name, int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!strcmp(cmds[i].name, name)) {
			G.cmd = cmds[i].name;
			return cmds[i].fn(argc, argv);
		}
	}
	fprintf(stderr, "spillway: unknown command \"%s\" (see: spillway --help)\n", name);
	return CLI_USAGE;
}

static int help(int argc, char **argv)
{
	char *args[4] = { NULL, NULL, NULL, NULL };

	if (argc < 2) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "positions") || !strcmp(argv[1], "time")) {
		fputs(help_positions, stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "daemon") || !strcmp(argv[1], "spillwayd")) {
		fputs(help_daemon, stdout);
		return CLI_OK;
	}
	args[0] = argv[1];
	if (argc > 2 && !strcmp(argv[1], "topic")) {
		args[1] = argv[2];
		args[2] = (char *)"--help";
		return run(argv[1], 3, args);
	}
	args[1] = (char *)"--help";
	return run(argv[1], 2, args);
}

/* Global flags before the command: --shm-dir DIR, --data-dir DIR (also
 * with '='), --help, --version. Returns the index of the command. */
static int global_flags(int argc, char **argv, int *rc)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *v = NULL;
		size_t n = strcspn(a, "=");

		if (a[n] == '=')
			v = a + n + 1;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			*rc = CLI_OK;
			return -1;
		}
		if (!strcmp(a, "--version")) {
			printf("spillway %d.%d.%d\n", SPW_VERSION_MAJOR, SPW_VERSION_MINOR, SPW_VERSION_PATCH);
			*rc = CLI_OK;
			return -1;
		}
		if ((n == 9 && !strncmp(a, "--shm-dir", n)) || (n == 10 && !strncmp(a, "--data-dir", n))) {
			if (!v && i + 1 >= argc) {
				*rc = cli_usage("option %.*s needs a value", (int)n, a);
				return -1;
			}
			if (!v)
				v = argv[++i];
			if (n == 9)
				G.shm_flag = v;
			else
				G.data_flag = v;
			continue;
		}
		*rc = cli_usage("unknown option %.*s", (int)n, a);
		return -1;
	}
	if (i >= argc) {
		fputs(usage, stderr);
		*rc = CLI_USAGE;
		return -1;
	}
	return i;
}

int main(int argc, char **argv)
{
	int rc = 0, i = global_flags(argc, argv, &rc);

	if (i < 0)
		return rc;
	if (!strcmp(argv[i], "help"))
		return help(argc - i, argv + i);
	return run(argv[i], argc - i, argv + i);
}
