/* SPDX-License-Identifier: MIT */
/*
 * opts.c - the subcommands' flags, declared as tables (struct cli_opt,
 * tools/cli.h) and parsed here once: the common flags (--shm-dir,
 * --data-dir, --help), the messages for a bad or missing value, and the
 * value kinds every subcommand shares (counts, sizes, durations, positions,
 * formats, speeds, names).
 */
#include "cli.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static void opt_name(int argc, char **argv, char *buf, size_t n)
{
	const char *a = optind > 0 && optind <= argc ? argv[optind - 1] : NULL;

	if (a && a[0] == '-' && a[1] == '-')
		snprintf(buf, n, "%.*s", (int)strcspn(a, "="), a);
	else if (optopt > 0 && optopt < 128 && isgraph(optopt))
		snprintf(buf, n, "-%c", optopt);
	else
		snprintf(buf, n, "%s", a ? a : "?");
}

static int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *opts,
			  const char *usage, int *rc)
{
	char so[72], name[64]; /* shortopts (< 64, cli_opts) + ":" "h" */
	int c;

	snprintf(so, sizeof(so), ":%sh", shortopts ? shortopts : "");
	opterr = 0;
	for (;;) {
		c = getopt_long(argc, argv, so, opts, NULL);
		switch (c) {
		case OPT_SHM_DIR:
			G.shm_flag = optarg;
			continue;
		case OPT_DATA_DIR:
			G.data_flag = optarg;
			continue;
		case 'h':
			fputs(usage, stdout);
			*rc = CLI_OK;
			return -2;
		case ':':
			opt_name(argc, argv, name, sizeof(name));
			*rc = cli_usage("option %s needs a value", name);
			return -2;
		case '?':
			opt_name(argc, argv, name, sizeof(name));
			*rc = cli_usage("unknown option %s", name);
			return -2;
		default:
			return c;
		}
	}
}

/* A duration in seconds (the shared syntax, spill/conf.c; bare = seconds)
 * from min_ms to a day. */
static int seconds(const char *flag, const char *v, unsigned min_ms, double *out)
{
	double ms;

	if (seg_parse_duration(v, 1e3, &ms) || ms < min_ms || ms > 86400e3)
		return cli_usage("%s: bad duration \"%s\" (seconds, %g .. 86400)", flag, v,
				 min_ms / 1e3);
	*out = ms / 1e3;
	return CLI_OK;
}

/* One value into its destination. CLI_OK or CLI_USAGE (said). */
static int take(const struct cli_opt *o, const char *flag, const char *v)
{
	switch (o->kind) {
	case CLI_O_FLAG: *(bool *)o->dst = true; return CLI_OK;
	case CLI_O_BITS: *(unsigned *)o->dst |= o->arg; return CLI_OK;
	case CLI_O_STR: *(const char **)o->dst = v; return CLI_OK;
	case CLI_O_NAME: {
		int rc = cli_name_check(o->name, v);

		if (!rc)
			*(const char **)o->dst = v;
		return rc;
	}
	case CLI_O_COUNT: return cli_count(flag, v, o->dst);
	case CLI_O_SIZE: return cli_size(flag, v, o->dst);
	case CLI_O_DURATION: return cli_duration(flag, v, o->dst);
	case CLI_O_WHERE: return cli_where(flag, v, o->arg, o->dst);
	case CLI_O_FORMAT: return cli_format(v, o->arg, o->dst);
	case CLI_O_SPEED: return cli_parse_speed(v, o->dst);
	case CLI_O_SECONDS: return seconds(flag, v, o->arg, o->dst);
	case CLI_O_FN: return o->fn(o->dst, flag, v);
	}
	return cli_usage("unexpected option");
}

static bool takes_value(const struct cli_opt *o)
{
	return o->kind != CLI_O_FLAG && o->kind != CLI_O_BITS;
}

int cli_opts(int argc, char **argv, const struct cli_opt *spec, const char *usage)
{
	static const struct option common[] = { CLI_COMMON_OPTS };
	struct option *lo;
	char so[64] = "", flag[48];
	size_t n = 0, k = 0, ns = 0;
	int c, rc = CLI_OK;

	while (spec[n].name || spec[n].short_name)
		n++;
	lo = calloc(n + 4, sizeof(*lo));
	if (!lo)
		return CLI_ERR;
	for (size_t i = 0; i < n; i++) {
		if (spec[i].name)
			lo[k++] = (struct option){ spec[i].name,
						   takes_value(&spec[i]) ? required_argument
									 : no_argument,
						   NULL, OPT_FIRST_LOCAL + (int)i };
		if (spec[i].short_name && ns + 3 < sizeof(so)) {
			so[ns++] = (char)spec[i].short_name;
			if (takes_value(&spec[i]))
				so[ns++] = ':';
		}
	}
	memcpy(lo + k, common, sizeof(common));
	while ((c = cli_getopt(argc, argv, so, lo, usage, &rc)) != -1) {
		const struct cli_opt *o = NULL;

		if (c == -2)
			break;
		if (c >= OPT_FIRST_LOCAL && c < OPT_FIRST_LOCAL + (int)n)
			o = &spec[c - OPT_FIRST_LOCAL];
		for (size_t i = 0; !o && i < n; i++)
			if (spec[i].short_name == c)
				o = &spec[i];
		if (!o) {
			rc = cli_usage("unexpected option");
			break;
		}
		if (o->name)
			snprintf(flag, sizeof(flag), "--%s", o->name);
		else
			snprintf(flag, sizeof(flag), "-%c", o->short_name);
		if ((rc = take(o, flag, optarg)))
			break;
		if (o->seen)
			*o->seen = true;
	}
	free(lo);
	return c == -1 ? -1 : rc;
}

int cli_opts_topic(int argc, char **argv, const struct cli_opt *spec, const char *usage,
		   const char **name)
{
	int rc = cli_opts(argc, argv, spec, usage);

	if (rc >= 0)
		return rc;
	if ((rc = cli_topic_arg(argc, argv, name)))
		return rc;
	return -1;
}
