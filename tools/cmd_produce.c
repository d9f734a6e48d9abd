/* SPDX-License-Identifier: MIT */
/*
 * cmd_produce.c - spillway produce NAME [--format lines|raw|lenpfx]
 *                 [--ack none|spilled|durable] [FILE...]
 *
 * Records come from stdin or the files in order: one per line (the '\n' is
 * dropped, every other byte kept, NUL included), the whole input as one
 * record (raw), or u32 little-endian length + bytes (lenpfx). A record over
 * the topic's max_record stops the run with exit 1; the records before it
 * stay in the log. A full ring blocks (spw_producer_send_wait); when that is
 * because no spillwayd runs, it says so once.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"usage: spillway produce NAME [--format lines|raw|lenpfx] [--ack none|spilled|durable]\n"
	"                        [--verbose] [FILE...]\n"
	"Append records to topic NAME from stdin, or from each FILE in order ('-' = stdin).\n"
	"  --format lines    one record per line, without its '\\n' (default; any bytes)\n"
	"  --format raw      the whole input (each FILE) as one record; empty input: none\n"
	"  --format lenpfx   records framed as u32 little-endian length, then the bytes\n"
	"  --ack LEVEL       before exiting, wait until the last record is committed (none,\n"
	"                    the default), spilled to segment files, or durable (fdatasync'd)\n"
	"  -v, --verbose     print a summary on stderr\n"
	"A full ring blocks until spillwayd makes room. A record over the topic's max record\n"
	"is refused (exit 1); the records before it are kept.\n"
	"Example: printf 'a\\nb\\n' | spillway produce orders --ack durable\n" CLI_COMMON_HELP;

struct src {
	int fd;
	const char *name;
	uint8_t *buf;
	size_t cap, start, end;
	uint64_t off; /* input offset of buf[start] */
	bool eof;
};

struct prod {
	const char *topic;
	struct spw_topic *t;
	struct spw_producer *p;
	uint32_t max_record;
	enum fmt fmt;
	uint64_t records, bytes, in_src;
	int64_t first_pos, last_pos;
	int said;               /* the blocked reason said last (cli_block_reason), 0 none */
	bool gone;              /* the topic was deleted under it (-EIDRM) */
	uint32_t said_crc;      /* of the reason said last (code 7's may change) */
};

/* Make at least n bytes available from start (fewer only at EOF). 0, or
 * -errno of a failed read. */
static int src_need(struct src *s, size_t n)
{
	while (s->end - s->start < n && !s->eof) {
		ssize_t got;

		if (s->start && s->end + (n - (s->end - s->start)) > s->cap) {
			memmove(s->buf, s->buf + s->start, s->end - s->start);
			s->end -= s->start;
			s->start = 0;
		}
		if (s->end == s->cap) {
			size_t cap = s->cap * 2 > n ? s->cap * 2 : n;
			uint8_t *nb = realloc(s->buf, cap);

			if (!nb)
				return -ENOMEM;
			s->buf = nb;
			s->cap = cap;
		}
		got = read(s->fd, s->buf + s->end, s->cap - s->end);
		if (got < 0) {
			if (errno == EINTR && !cli_stop)
				continue;
			return -errno;
		}
		if (got == 0)
			s->eof = true;
		s->end += (size_t)got;
	}
	return 0;
}

static void src_take(struct src *s, size_t n)
{
	s->start += n;
	s->off += n;
}

/* Blocked on a full ring: at once when no daemon runs, else after a second,
 * one line saying why (cli_block_reason), again when the reason changes. */
static void say_blocked(struct prod *pr, uint64_t since)
{
	struct spw_topic_info in;
	char why[CLI_WHY_BYTES];
	int code;

	spw_topic_info(pr->t, &in);
	code = cli_block_reason(pr->t, &in, why, sizeof(why));
	/* Code 7 (the daemon has not attached it) carries the reason it
	 * published, which may come or change while we wait: said again then. */
	if ((code == pr->said && (code != 7 || seg_crc32c(0, why, strlen(why)) == pr->said_crc)) ||
	    (code != 1 && cli_mono_ns() - since < 1000000000ull))
		return;
	pr->said = code;
	pr->said_crc = seg_crc32c(0, why, strlen(why));
	if (code == 1)
		cli_err("topic \"%s\" is full and %s; waiting. Start it: spillwayd --shm-dir %s "
			"--data-dir %s",
			pr->topic, why, G.shm_dir, G.data_dir);
	else if (code == 8)
		cli_err("topic \"%s\" is full and %s; waiting", pr->topic, why);
	else if (code == 5)
		cli_err("topic \"%s\": %s; waiting", pr->topic, why);
	else
		cli_err("topic \"%s\" is full: %s; waiting", pr->topic, why);
}

/* A record over max_record: refused, with what was kept. `partial`: a line
 * whose end was not read yet (its length is only known to be over). */
static int too_big(const struct prod *pr, const struct src *s, size_t len, bool partial)
{
	cli_err("record %llu of %s (at byte %llu) is %s%zu bytes, over the max record of topic "
		"\"%s\" (%u bytes); the %llu record%s before it %s kept (split it, or recreate the "
		"topic with a bigger --max-record)",
		(unsigned long long)pr->in_src + 1, s->name, (unsigned long long)s->off,
		partial ? "more than " : "", len, pr->topic, pr->max_record,
		(unsigned long long)pr->records, pr->records == 1 ? "" : "s",
		pr->records == 1 ? "was" : "were");
	return CLI_ERR;
}

static int send_one(struct prod *pr, const struct src *s, const void *data, size_t len)
{
	int64_t pos;

	if (len > pr->max_record)
		return too_big(pr, s, len, false);
	pos = spw_producer_send(pr->p, data, (uint32_t)len);
	if (pos == -EAGAIN) {
		uint64_t since = cli_mono_ns();

		while (pos == -EAGAIN || pos == -ETIMEDOUT) {
			if (cli_stop)
				return 128 + cli_stop;
			say_blocked(pr, since);
			pos = spw_producer_send_wait(pr->p, data, (uint32_t)len, 250000000);
		}
		if (pr->said && pos >= 0) {
			cli_err("topic \"%s\" takes records again (waited %.1f s)", pr->topic,
				(double)(cli_mono_ns() - since) / 1e9);
			pr->said = 0;
		}
	}
	if (pos == -EIDRM) { /* spw_topic_delete's mark, or an unlink its waits found */
		pr->gone = true;
		cli_err("topic \"%s\" was deleted (its ring unlinked or replaced) before record %llu "
			"of %s; records appended before the delete that were not spilled went with "
			"the ring",
			pr->topic, (unsigned long long)pr->in_src + 1, s->name);
		return CLI_ERR;
	}
	if (pos < 0) {
		cli_err("cannot append record %llu of %s to topic \"%s\": %s",
			(unsigned long long)pr->in_src + 1, s->name, pr->topic, strerror((int)-pos));
		return CLI_ERR;
	}
	if (!pr->records)
		pr->first_pos = pos;
	pr->last_pos = pos;
	pr->records++;
	pr->in_src++;
	pr->bytes += len;
	return CLI_OK;
}

static int read_err(const struct src *s, int r)
{
	cli_err("cannot read %s: %s", s->name, strerror(-r));
	return CLI_ERR;
}

static int produce_lines(struct prod *pr, struct src *s)
{
	size_t scanned = 0;
	int r;

	for (;;) {
		uint8_t *nl = memchr(s->buf + s->start + scanned, '\n', s->end - s->start - scanned);

		if (nl) {
			size_t len = (size_t)(nl - (s->buf + s->start));

			if ((r = send_one(pr, s, s->buf + s->start, len)))
				return r;
			src_take(s, len + 1);
			scanned = 0;
			continue;
		}
		scanned = s->end - s->start;
		if (scanned > pr->max_record)
			return too_big(pr, s, pr->max_record, true);
		if (s->eof) {
			if (scanned && (r = send_one(pr, s, s->buf + s->start, scanned)))
				return r;
			src_take(s, scanned);
			return CLI_OK;
		}
		if ((r = src_need(s, scanned + 1)))
			return read_err(s, r);
		if (cli_stop)
			return 128 + cli_stop;
	}
}

static int produce_raw(struct prod *pr, struct src *s)
{
	int r = src_need(s, (size_t)pr->max_record + 1);

	if (r)
		return read_err(s, r);
	if (s->end == s->start)
		return CLI_OK;
	/* Only max_record + 1 bytes are read: a longer input's length is not
	 * known, only that it is over. */
	if (s->end - s->start > pr->max_record)
		return too_big(pr, s, pr->max_record, true);
	return send_one(pr, s, s->buf + s->start, s->end - s->start);
}

static int produce_lenpfx(struct prod *pr, struct src *s)
{
	int r;

	for (;;) {
		uint32_t len;
		const uint8_t *h;

		if ((r = src_need(s, 4)))
			return read_err(s, r);
		if (s->end == s->start)
			return CLI_OK;
		if (s->end - s->start < 4) {
			/* partial prefix at EOF */
			cli_err("%s: truncated length prefix at byte %llu (%zu of 4 bytes)", s->name,
				(unsigned long long)s->off, s->end - s->start);
			return CLI_ERR;
		}
		h = s->buf + s->start;
		len = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
		if (len > pr->max_record)
			return send_one(pr, s, h, len); /* refuses it with the message */
		if ((r = src_need(s, 4 + (size_t)len)))
			return read_err(s, r);
		if (s->end - s->start < 4 + (size_t)len) {
			cli_err("%s: truncated record at byte %llu: its prefix says %u bytes, only %zu "
				"follow",
				s->name, (unsigned long long)s->off, len, s->end - s->start - 4);
			return CLI_ERR;
		}
		if ((r = send_one(pr, s, s->buf + s->start + 4, len)))
			return r;
		src_take(s, 4 + (size_t)len);
		if (cli_stop)
			return 128 + cli_stop;
	}
}

static int produce_src(struct prod *pr, const char *path)
{
	struct src s = { .fd = 0, .name = "stdin" };
	int rc;

	if (path && strcmp(path, "-")) {
		s.fd = open(path, O_RDONLY | O_CLOEXEC);
		if (s.fd < 0) {
			cli_err("cannot open %s: %s (%llu records were produced before it)", path,
				strerror(errno), (unsigned long long)pr->records);
			return CLI_ERR;
		}
		s.name = path;
	}
	s.cap = 1u << 16;
	s.buf = malloc(s.cap);
	if (!s.buf)
		return CLI_ERR;
	pr->in_src = 0;
	switch (pr->fmt) {
	case FMT_RAW: rc = produce_raw(pr, &s); break;
	case FMT_LENPFX: rc = produce_lenpfx(pr, &s); break;
	default: rc = produce_lines(pr, &s); break;
	}
	free(s.buf);
	if (s.fd > 0)
		close(s.fd);
	return rc;
}

static int wait_ack(struct prod *pr, enum spw_ack level)
{
	const char *lvl = level == SPW_ACK_DURABLE ? "durable" : "spilled";
	unsigned ack_said = 0; /* the cli_block_reason codes said, a bit each */
	uint32_t ack_crc = 0;  /* of code 7's reason said last (it may change) */
	int r;

	for (;;) {
		r = spw_producer_wait_ack(pr->p, pr->last_pos, level, 250000000);
		if (r != -ETIMEDOUT)
			break;
		if (cli_stop)
			return 128 + cli_stop;
		{
			/* Each reason once, when it comes: the daemon's state can change
			 * while we wait (4, the disk being slower, is no reason here). */
			struct spw_topic_info in;
			char why[CLI_WHY_BYTES];
			int code;

			spw_topic_info(pr->t, &in);
			code = cli_block_reason(pr->t, &in, why, sizeof(why));
			uint32_t crc = seg_crc32c(0, why, strlen(why));

			if (code != 4 && (!(ack_said & (1u << code)) || (code == 7 && crc != ack_crc))) {
				ack_said |= 1u << code;
				ack_crc = code == 7 ? crc : ack_crc;
				if (code == 1)
					cli_err("topic \"%s\" waits for its %s acknowledgement and %s; "
						"waiting. Start it: spillwayd --shm-dir %s --data-dir %s",
						pr->topic, lvl, why, G.shm_dir, G.data_dir);
				else
					cli_err("topic \"%s\" waits for its %s acknowledgement: %s; "
						"waiting", pr->topic, lvl, why);
			}
		}
	}
	if (r == -EIDRM) { /* spw_topic_delete's mark, or an unlink its waits found */
		cli_err("topic \"%s\" was deleted (its ring unlinked or replaced) while waiting for "
			"the %s acknowledgement of position %lld: it will not come",
			pr->topic, lvl, (long long)pr->last_pos);
		return CLI_ERR;
	}
	if (r) {
		cli_err("waiting for the %s acknowledgement of position %lld of topic \"%s\": %s", lvl,
			(long long)pr->last_pos, pr->topic, strerror(-r));
		return CLI_ERR;
	}
	return CLI_OK;
}

static int opt_ack(void *dst, const char *flag, const char *v)
{
	int *ack = dst;

	if (!strcmp(v, "none"))
		*ack = -1;
	else if (!strcmp(v, "spilled"))
		*ack = SPW_ACK_SPILLED;
	else if (!strcmp(v, "durable"))
		*ack = SPW_ACK_DURABLE;
	else
		return cli_usage("%s: unknown level \"%s\" (use none|spilled|durable)", flag, v);
	return CLI_OK;
}

int cmd_produce(int argc, char **argv)
{
	struct prod pr = { .fmt = FMT_LINES };
	struct spw_topic_info in;
	int ack = -1, rc, files;
	bool verbose = false;
	const struct cli_opt spec[] = {
		O_FORMAT("format", &pr.fmt, FMT_IN_MASK),
		O_FN("ack", 0, CLI_T(int, &ack), opt_ack),
		O_FLAG("verbose", 'v', &verbose),
		O_END,
	};

	if ((rc = cli_opts(argc, argv, spec, usage)) >= 0)
		return rc;
	if (optind >= argc)
		return cli_usage("missing the topic NAME");
	pr.topic = argv[optind];
	if ((rc = cli_name_check("topic", pr.topic)))
		return rc;
	files = argc - optind - 1;
	cli_dirs();
	if (cli_topic_open(pr.topic, 0, &pr.t))
		return CLI_ERR;
	spw_topic_info(pr.t, &in);
	pr.max_record = in.max_record;
	if (ack >= 0 && (in.flags & SPW_TOPIC_NO_SPILL)) {
		cli_err("topic \"%s\" is --no-spill: it has no spilled or durable acknowledgements "
			"(use --ack none)",
			pr.topic);
		spw_topic_close(pr.t);
		return CLI_ERR;
	}
	rc = spw_producer_open(pr.t, &pr.p);
	if (rc) {
		if (rc == -EUSERS)
			cli_err("cannot open a producer on topic \"%s\": all its producer slots are held "
				"by live producers (see spillway stat; raise --max-producers at topic "
				"create)", pr.topic);
		else
			cli_err("cannot open a producer on topic \"%s\": %s", pr.topic, strerror(-rc));
		spw_topic_close(pr.t);
		return CLI_ERR;
	}
	cli_catch_signals();
	rc = CLI_OK;
	for (int i = 0; rc == CLI_OK && i < (files ? files : 1); i++)
		rc = produce_src(&pr, files ? argv[optind + 1 + i] : NULL);
	if (rc > 128)
		cli_err("interrupted: %llu records were appended to topic \"%s\"%s",
			(unsigned long long)pr.records, pr.topic,
			ack >= 0 && pr.records ? " (their acknowledgement not waited for)" : "");
	/* Stopped by bad input (a record too big, a torn frame): the records
	 * before it were appended, and said to be kept; with --ack they are
	 * acknowledged first, as if the input had ended there. */
	if ((rc == CLI_OK || (rc == CLI_ERR && !pr.gone)) && ack >= 0 && pr.records) {
		int ar = wait_ack(&pr, (enum spw_ack)ack);

		rc = rc == CLI_OK ? ar : rc;
	}
	if (verbose && rc == CLI_OK && pr.records)
		fprintf(stderr, "spillway produce: %llu records, %llu bytes to topic %s (positions "
			"%lld..%lld)\n",
			(unsigned long long)pr.records, (unsigned long long)pr.bytes, pr.topic,
			(long long)pr.first_pos, (long long)pr.last_pos);
	else if (verbose && rc == CLI_OK)
		fprintf(stderr, "spillway produce: no records (empty input) for topic %s\n", pr.topic);
	spw_producer_close(pr.p);
	spw_topic_close(pr.t);
	return rc;
}
