/* SPDX-License-Identifier: MIT */
/*
 * topics.c - topic lookups for the subcommands: paths, existence, opening
 * the ring with an error a user can act on, daemon liveness, the disk log's
 * summary, the list of topics, removal, and reader errors.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* --- topics ------------------------------------------------------------------------- */
int cli_ring_path(char *buf, size_t n, const char *name)
{
	if ((size_t)snprintf(buf, n, "%s/%s.ring", G.shm_dir, name) >= n)
		return -ENAMETOOLONG;
	return 0;
}

int cli_topic_dir(char *buf, size_t n, const char *name)
{
	return seg_topic_dir(buf, n, G.data_dir, name);
}

/* A topic we cannot see because a directory refuses us is not "not found":
 * say which directory, and why. true when it said so. */
static bool denied(const char *name)
{
	char p[PATH_MAX + 64];
	struct stat st;

	if ((!cli_ring_path(p, sizeof(p), name) && stat(p, &st) && errno == EACCES) ||
	    (!cli_topic_dir(p, sizeof(p), name) && stat(p, &st) && errno == EACCES)) {
		cli_err("topic \"%s\": permission denied reaching %s (a topic shared with a group "
			"is open to its members only: ask for the group, or run as its owner)",
			name, p);
		return true;
	}
	return false;
}

bool cli_pid_stopped(uint32_t pid)
{
	char path[64], buf[512];
	const char *rp;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses. */
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && (rp[2] == 'T' || rp[2] == 't');
}

bool cli_group_unreadable(const char *topic, const char *group, int g, const char *what_then)
{
	char dir[PATH_MAX];

	/* (-EINVAL: a bad name, which the reader says, or not a file) */
	if (!g || g == -ENOENT || (g == -EINVAL && spw_topic_name_check(group)))
		return false;
	cli_topic_dir(dir, sizeof(dir), topic);
	cli_err("group \"%s\" of topic \"%s\": %s/groups/%s cannot be read (%s%s); "
		"restore or remove it, %s",
		group, topic, dir, group, g == -EINVAL ? "not a regular file" : strerror(-g),
		g == -EBADMSG ? ": damaged, or not a group file" : "", what_then);
	return true;
}

void cli_group_err(const char *topic, const char *group, int e)
{
	char lk[PATH_MAX + SPW_NAME_MAX + 16], who[160] = "";
	uint32_t pid = 0;

	if (spw_group_lock_path(lk, sizeof(lk), G.data_dir, topic, group))
		snprintf(lk, sizeof(lk), "its groups/ dir");
	if (e == -EBUSY) {
		if (seg_group_holder(G.data_dir, topic, group, &pid) == 1 && pid)
			snprintf(who, sizeof(who), cli_pid_stopped(pid) ? " (pid %u, STOPPED: SIGSTOP or a "
					 "debugger; it holds the group until it runs and exits)" : " (pid %u)",
				 pid);
		cli_err("group \"%s\" of topic \"%s\" is being read by another reader%s: a group has "
			"one reader at a time, which holds it until it exits (the process that has %s "
			"open); read with another group, or without --group",
			group, topic, who, lk);
	} else if (e == -ENOLCK) {
		cli_err("group \"%s\" of topic \"%s\": its lock file %s was removed or replaced "
			"while this reader held the group, so another reader may hold it now: not "
			"committed; stopping (never remove that file)",
			group, topic, lk);
	} else {
		cli_err("cannot take group \"%s\" of topic \"%s\": its lock file %s: %s%s", group,
			topic, lk,
			e == -EINVAL && !spw_topic_name_check(group) ? "not a regular file (remove it)"
								      : strerror(-e),
			e == -EACCES ? " (its owner, or the topic's, can remove it while no reader "
				       "holds the group)"
				     : "");
	}
}

void cli_not_found(const char *name)
{
	if (denied(name))
		return;
	cli_err("topic \"%s\" not found in %s (create it with: spillway topic create %s%s)", name,
		G.shm_dir, name, cli_dir_flags());
}

bool cli_topic_exists(const char *name, bool *has_ring, bool *has_data)
{
	char p[PATH_MAX + 64];
	struct stat st;
	bool r = false, d = false;

	if (!cli_ring_path(p, sizeof(p), name))
		r = stat(p, &st) == 0 && S_ISREG(st.st_mode);
	if (!cli_topic_dir(p, sizeof(p) - 16, name)) {
		strcat(p, "/" SEG_CONF_NAME);
		d = stat(p, &st) == 0;
	}
	if (has_ring)
		*has_ring = r;
	if (has_data)
		*has_data = d;
	return r || d;
}

int cli_topic_open(const char *name, unsigned flags, struct spw_topic **t)
{
	char path[PATH_MAX + 64];
	bool has_data;
	int r = spw_topic_open(G.shm_dir, name, flags, t);

	if (!r)
		return CLI_OK;
	cli_ring_path(path, sizeof(path), name);
	switch (-r) {
	case ENOENT:
		cli_topic_exists(name, NULL, &has_data);
		if (has_data)
			cli_err("topic \"%s\" has no ring in %s, only its log in %s (start spillwayd%s "
				"to recreate the ring, or delete it: spillway topic delete %s)",
				name, G.shm_dir, G.data_dir, cli_dir_flags(), name);
		else
			cli_not_found(name);
		break;
	case ENOTDIR:
		cli_err("the shm dir %s is not a directory (check --shm-dir / SPILLWAY_SHM_DIR)",
			G.shm_dir);
		break;
	case EACCES:
	case EPERM:
		cli_err("permission denied opening %s (run as its owner or a member of its group)",
			path);
		break;
	case EBADMSG:
		cli_err("%s is not a valid Spillway ring (bad header); remove it, keeping the disk "
			"log: spillway topic delete %s --keep-log%s (spillwayd makes it again at the "
			"log's end)",
			path, name, cli_dir_flags());
		break;
	case EPROTO:
		cli_err("%s is a ring of another format version (made by another Spillway release); "
			"once nothing uses it, remove it, keeping the disk log: spillway topic delete "
			"%s --keep-log%s (spillwayd makes it again at the log's end)",
			path, name, cli_dir_flags());
		break;
	default:
		cli_err("cannot open %s: %s", path, strerror(-r));
	}
	return CLI_ERR;
}

/* The kernel's answer, without taking a lock: spillwayd holds an OFD write
 * lock on byte 0 of <data>/.spillwayd.pid while it lives (daemon/main.c
 * publish_pid), which F_OFD_GETLK reports whatever the PID namespace or
 * file system; a read lock anyone else holds there does not pass for it.
 * The pid is the one the daemon wrote into the file. */
/* A file the data dir's spillwayd publishes there (SEG_PID_NAME,
 * SEG_REFUSED_NAME), opened read-only if it is the daemon's own: owned by
 * the data dir's owner, as spillwayd checks its data dir (seg_dir_check).
 * fd, -ENOENT, -EPERM (another user's), or -errno. */
static int daemon_file(const char *name)
{
	char path[PATH_MAX + 32];
	struct stat st, dir;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", G.data_dir, name);
	fd = seg_open_file(path, O_RDONLY, 0, false);
	if (fd >= 0 && (fstat(fd, &st) || stat(G.data_dir, &dir) || st.st_uid != dir.st_uid)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int cli_data_dir_served(uint32_t *pid, char *shm, size_t shm_len)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	char buf[PATH_MAX + 48] = "";
	int fd, r = 0;

	*pid = 0;
	if (shm_len)
		shm[0] = '\0';
	/* One planted by another user, and the pid in it, are not taken
	 * (tools/cmd_topic.c signals that pid). */
	fd = daemon_file(SEG_PID_NAME);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	if (fcntl(fd, F_OFD_GETLK, &fl))
		r = -errno;
	else if (fl.l_type != F_UNLCK) {
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		char *nl;

		buf[n > 0 ? n : 0] = '\0';
		*pid = (uint32_t)strtoul(buf, NULL, 10);
		/* The second line: the shm dir it spills (older daemons: none). */
		if (shm_len && (nl = strchr(buf, '\n')) && nl[1]) {
			snprintf(shm, shm_len, "%s", nl + 1);
			shm[strcspn(shm, "\n")] = '\0';
		}
		r = 1;
	}
	close(fd);
	return r;
}

int cli_refusal(const char *name, char *why, size_t n)
{
	char line[SPW_NAME_MAX + SEG_REFUSED_WHY + 8];
	size_t len = strlen(name);
	int fd, r = 0;
	FILE *f;

	if (n)
		why[0] = '\0';
	fd = daemon_file(SEG_REFUSED_NAME); /* anyone else's says nothing */
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	if (!(f = fdopen(fd, "r"))) {
		close(fd);
		return -ENOMEM;
	}
	while (!r && fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, len) || line[len] != '\t')
			continue;
		snprintf(why, n, "%s", line + len + 1);
		why[strcspn(why, "\n")] = '\0';
		/* Trust no byte: nothing for the terminal, valid UTF-8 for JSON. */
		bool utf8 = out_utf8_valid((const uint8_t *)why, strlen(why));

		for (char *c = why; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f || (!utf8 && (unsigned char)*c > 0x7f))
				*c = '?';
		r = 1;
	}
	fclose(f);
	return r;
}

void cli_daemon_look(const struct spw_topic *t, const struct spw_topic_info *in,
		     struct cli_daemon_look *out)
{
	uint64_t now = cli_now_ns();
	double age = in->daemon_heartbeat_ns && now > in->daemon_heartbeat_ns
			     ? (double)(now - in->daemon_heartbeat_ns) / 1e9
			     : 0;
	int owned = spwd_owned(t), served = 0;
	char shm[PATH_MAX];

	out->why[0] = '\0';
	out->served_err = 0;
	out->other_shm = false;
	out->why_hidden = false;
	out->pid = in->daemon_pid;
	out->age_s = in->daemon_pid ? age : -1;
	if (owned < 0) /* the kernel cannot tell (no lock support?): the PID's word */
		owned = in->daemon_pid && !(kill((pid_t)in->daemon_pid, 0) && errno == ESRCH);
	if (owned)
		out->state = age > 2.0 ? CLI_DAEMON_SILENT : CLI_DAEMON_ALIVE;
	else if ((served = cli_data_dir_served(&out->pid, shm, sizeof(shm))) == 1) {
		char mine[PATH_MAX];

		int rr = cli_refusal(t->name, out->why, sizeof(out->why));

		out->state = CLI_DAEMON_UNATTACHED;
		if (rr < 0) { /* not "not attached yet" for ever: say it cannot be read */
			snprintf(out->why, sizeof(out->why), "the reason it published cannot be read "
				 "here (%.*s/%s: %s)", 200, G.data_dir, SEG_REFUSED_NAME, strerror(-rr));
			out->why_hidden = true;
		}
		/* Another shm dir: it will never see this ring. */
		if (!out->why[0] && shm[0] && realpath(G.shm_dir, mine) && strcmp(mine, shm)) {
			snprintf(out->why, sizeof(out->why), "it spills the rings of %.*s, not of %.*s "
				 "(give both the same --shm-dir)", 150, shm, 150, mine);
			out->other_shm = true;
		}
	} else {
		out->state = in->daemon_pid ? CLI_DAEMON_GONE : CLI_DAEMON_NEVER;
		out->served_err = served < 0 ? served : 0;
	}
	if (out->state != CLI_DAEMON_UNATTACHED)
		out->pid = in->daemon_pid;
}

void cli_daemon_why(const struct cli_daemon_look *d, char *buf, size_t n)
{
	switch (d->state) {
	case CLI_DAEMON_NEVER:
	case CLI_DAEMON_GONE: {
		char last[96] = "";

		if (d->state == CLI_DAEMON_GONE)
			snprintf(last, sizeof(last), " (the last, pid %u, beat %.0f s ago)", d->pid,
				 d->age_s);
		if (d->served_err)
			snprintf(buf, n, "no spillwayd holds the topic%s; whether one serves %s cannot "
				 "be told (%s/%s: %s)", last, G.data_dir, G.data_dir, SEG_PID_NAME,
				 strerror(-d->served_err));
		else if (d->state == CLI_DAEMON_NEVER)
			snprintf(buf, n, "no spillwayd has ever attached to it");
		else
			snprintf(buf, n, "no spillwayd holds the topic now%s", last);
		break;
	}
	case CLI_DAEMON_UNATTACHED:
		if (d->other_shm)
			snprintf(buf, n, "spillwayd (pid %u) serves this data dir but %s", d->pid,
				 d->why);
		else if (d->why_hidden)
			snprintf(buf, n, "spillwayd (pid %u) serves this data dir but has not attached "
				 "the topic; %s", d->pid, d->why);
		else if (d->why[0])
			snprintf(buf, n, "spillwayd (pid %u) serves this data dir but refused the "
				 "topic: %s", d->pid, d->why);
		else
			snprintf(buf, n, "spillwayd (pid %u) serves this data dir but has not "
				 "attached the topic yet", d->pid);
		break;
	case CLI_DAEMON_SILENT:
		snprintf(buf, n, "spillwayd (pid %u) holds the topic but last beat %.1f s ago: "
			 "stopped or hung (SIGSTOP? a debugger?); nothing is spilled meanwhile",
			 d->pid, d->age_s);
		break;
	case CLI_DAEMON_ALIVE:
		snprintf(buf, n, "spillwayd (pid %u) is working, last beat %.1f s ago", d->pid,
			 d->age_s);
		break;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of rings in the shm dir and topic dirs in the data dir, sorted and
 * unique. Returns the count or -1 (error printed). */
int cli_topic_names(char ***out)
{
	const char *dirs[2] = { G.shm_dir, G.data_dir };
	char **v = NULL;
	int n = 0, cap = 0;

	for (int k = 0; k < 2; k++) {
		DIR *d = opendir(dirs[k]);
		struct dirent *de;

		if (!d) {
			if (errno == ENOENT)
				continue;
			cli_err("cannot read the %s dir %s: %s (check %s)", k ? "data" : "shm", dirs[k],
				strerror(errno), k ? "--data-dir / SPILLWAY_DATA_DIR"
						   : "--shm-dir / SPILLWAY_SHM_DIR");
			for (int i = 0; i < n; i++)
				free(v[i]);
			free(v);
			return -1;
		}
		while ((de = readdir(d))) {
			char name[SPW_NAME_MAX + 8];
			size_t len = strlen(de->d_name);
			bool has;

			if (len > SPW_NAME_MAX + 5)
				continue;
			memcpy(name, de->d_name, len + 1);
			if (k == 0) {
				if (len <= 5 || strcmp(name + len - 5, ".ring"))
					continue;
				name[len - 5] = '\0';
			}
			if (spw_topic_name_check(name))
				continue;
			if (k == 1 && (!cli_topic_exists(name, NULL, &has) || !has))
				continue;
			if (n == cap) {
				char **nv = realloc(v, (size_t)(cap = cap ? cap * 2 : 16) * sizeof(*v));

				if (!nv)
					break;
				v = nv;
			}
			v[n++] = strdup(name);
		}
		closedir(d);
	}
	if (n)
		qsort(v, (size_t)n, sizeof(*v), cmp_str);
	int u = 0;

	for (int i = 0; i < n; i++) {
		if (u && !strcmp(v[u - 1], v[i]))
			free(v[i]);
		else
			v[u++] = v[i];
	}
	*out = v;
	return u;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) && errno != ENOENT ? -1 : 0;
}

int cli_rmtree(const char *path)
{
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) && errno != ENOENT)
		return -errno;
	return 0;
}

void cli_reader_start(const struct where *w, struct spw_reader_opts *o)
{
	o->shm_dir = G.shm_dir;
	o->data_dir = G.data_dir;
	switch (w->kind) {
	case W_LATEST:
		o->start = SPW_START_LATEST;
		break;
	case W_POSITION:
		o->start = SPW_START_POSITION;
		o->position = w->position;
		break;
	case W_TIME:
		o->start = SPW_START_TIME;
		o->time_ns = w->time_ns;
		break;
	default:
		o->start = SPW_START_EARLIEST;
	}
}

/* -ERANGE: the start is gone: lapped in a no-spill topic (how much was
 * lost), or deleted by retention (where the log starts now). */
static void err_range(const char *topic, const char *doing, int64_t pos)
{
	struct spw_topic *t = NULL;
	struct spw_topic_info in = { 0 };
	int64_t e = spw_topic_earliest(G.shm_dir, G.data_dir, topic);

	if (e < 0) { /* no ring, no log: deleted while it was read */
		char at[48] = "";

		if (pos >= 0)
			snprintf(at, sizeof(at), ", at position %lld", (long long)pos);
		cli_err("%s topic \"%s\": the topic is gone (deleted while it was read%s)", doing,
			topic, at);
		return;
	}
	if (spw_topic_open(G.shm_dir, topic, SPW_OPEN_RDONLY, &t) == 0) {
		spw_topic_info(t, &in);
		spw_topic_close(t);
	}
	if ((in.flags & SPW_TOPIC_NO_SPILL) && pos >= 0 && e > pos) {
		cli_err("%s topic \"%s\": lapped in a no-spill topic: %lld bytes lost "
			"(positions %lld to %lld); the ring now starts at %lld (use --from earliest)",
			doing, topic, (long long)(e - pos), (long long)pos, (long long)e, (long long)e);
		return;
	}
	cli_err("%s topic \"%s\": the start position was deleted by retention; the earliest "
		"kept is %lld (use --from earliest)",
		doing, topic, (long long)e);
}

/* -EBADMSG without a file from the reader: name the file that is damaged
 * (the ring's header, topic.conf, or an index), not a guess. */
static void err_damaged(const char *topic, const char *doing)
{
	struct spw_topic *t = NULL;
	struct topic_conf conf;
	char dir[PATH_MAX], ring[PATH_MAX + 64];
	int tr = spw_topic_open(G.shm_dir, topic, SPW_OPEN_RDONLY, &t), cr;

	if (tr == 0)
		spw_topic_close(t);
	cli_ring_path(ring, sizeof(ring), topic);
	cli_topic_dir(dir, sizeof(dir), topic);
	cr = seg_conf_load(dir, &conf);
	if (tr == -EBADMSG)
		cli_err("%s topic \"%s\": the ring %s has a damaged header (remove it, keeping "
			"the disk log: spillway topic delete %s --keep-log%s; spillwayd makes it "
			"again at the log's end)",
			doing, topic, ring, topic, cli_dir_flags());
	else if (cr == -EBADMSG)
		cli_err("%s topic \"%s\": %s/%s is damaged (a line or a value that cannot "
			"be parsed, or sizes that disagree); fix or restore it",
			doing, topic, dir, SEG_CONF_NAME);
	else if (cr && tr)
		cli_err("%s topic \"%s\": no ring and no readable %s in %s (%s); recreate "
			"the topic, or restore its topic.conf",
			doing, topic, SEG_CONF_NAME, dir, strerror(-cr));
	else
		cli_err("%s topic \"%s\": a segment index in %s is damaged (see: spillway "
			"verify %s)",
			doing, topic, dir, topic);
}

void cli_reader_err(const char *topic, struct spw_reader *r, int rc, const char *doing)
{
	char file[PATH_MAX] = "";
	int64_t pos = -1;

	if (r)
		spw_reader_error(r, file, sizeof(file), &pos);
	switch (-rc) {
	case ENOENT:
		if (!r && denied(topic))
			return;
		if (!r) {
			cli_err("topic \"%s\" not found: no ring in %s and no log in %s (create it with: "
				"spillway topic create %s%s)",
				topic, G.shm_dir, G.data_dir, topic, cli_dir_flags());
			return;
		}
		cli_err("%s topic \"%s\": segment %s is missing in the middle of the log (position "
			"%lld); restore it, or start after it with --from",
			doing, topic, file, (long long)pos);
		return;
	case ERANGE:
		err_range(topic, doing, pos);
		return;
	case EBADMSG:
		if (!r || !file[0]) {
			err_damaged(topic, doing);
			return;
		}
		cli_err("%s topic \"%s\": %s is corrupt at position %lld (check it with: spillway "
			"verify %s)",
			doing, topic, file, (long long)pos, topic);
		return;
	case ESTALE:
		cli_err("%s topic \"%s\": lapped in the ring and the bytes are not on disk (is "
			"spillwayd running?)",
			doing, topic);
		return;
	case EINVAL:
		cli_err("%s topic \"%s\": the start position is beyond the tail or not a record "
			"boundary",
			doing, topic);
		return;
	case ENOTDIR:
		cli_err("%s topic \"%s\": %s or %s is not a directory (check --shm-dir / --data-dir)",
			doing, topic, G.shm_dir, G.data_dir);
		return;
	default:
		cli_err("%s topic \"%s\": %s%s%s", doing, topic, strerror(-rc), file[0] ? " at " : "",
			file);
	}
}

int cli_position_check(const char *name, int64_t pos)
{
	char dir[PATH_MAX], why[PATH_MAX + 200] = "";
	struct spw_topic *t = NULL;
	uint64_t before, after;
	int r;

	if (cli_topic_dir(dir, sizeof(dir), name))
		return CLI_OK;
	spw_topic_open(G.shm_dir, name, SPW_OPEN_RDONLY, &t);
	r = seg_log_check_position(dir, t, (uint64_t)pos, &before, &after, why, sizeof(why));
	spw_topic_close(t);
	if (!r)
		return CLI_OK;
	if (r == -ERANGE) {
		cli_err("position %lld is past the end of topic \"%s\" (its tail is %llu: "
			"the next record starts there)",
			(long long)pos, name, (unsigned long long)before);
		return CLI_ERR;
	}
	if (r == -EBADMSG) {
		cli_err("position %lld of topic \"%s\" lies in a damaged range (positions %llu..%llu: "
			"%s): no record start there can be trusted (spillway verify %s; start at "
			"%llu, or read on past it with --skip-corrupt)",
			(long long)pos, name, (unsigned long long)before, (unsigned long long)after, why,
			name, (unsigned long long)after);
		return CLI_ERR;
	}
	cli_err("no record of topic \"%s\" starts at position %lld (the records around it start at "
		"%llu and %llu; positions come from consume --format json or dump)",
		name, (long long)pos, (unsigned long long)before, (unsigned long long)after);
	return CLI_ERR;
}

int cli_log_walker(const char *name, char *dir, size_t dir_len, struct seg_log *w,
		   bool *has_ring, bool *has_data)
{
	struct topic_conf conf;

	if (!cli_topic_exists(name, has_ring, has_data)) {
		cli_not_found(name);
		return CLI_ERR;
	}
	cli_topic_dir(dir, dir_len, name);
	w->dir = dir;
	w->walk_records = true;
	/* max_record stays 0: the walker holds records to the format's bound
	 * (seg_max_record_bound), as readers do; topic.conf's may have been
	 * lowered after they were written (spill/reader.c reader_geometry). */
	if (seg_conf_load(dir, &conf) == 0) {
		w->ring_bytes = conf.ring_bytes;
		w->segment_bytes = conf.segment_bytes;
	}
	return CLI_OK;
}

int cli_block_reason(struct spw_topic *t, const struct spw_topic_info *in, char *buf, size_t n)
{
	struct spw_producer_info pi;
	struct cli_daemon_look d;
	char why[CLI_WHY_BYTES];

	if (in->tail > in->limit) {
		/* spillwayd stops there too (ring/scan.c): nothing makes room. */
		snprintf(buf, n, "the ring's header is garbage: its tail %llu is past its limit %llu "
			 "(something wrote into it); spillwayd does not spill past that, so nothing "
			 "makes room (its log says so; topic delete --keep-log makes a new ring, "
			 "losing what was not spilled)",
			 (unsigned long long)in->tail, (unsigned long long)in->limit);
		return 9;
	}
	if (seg_claim_at_tail(t, &pi)) {
		snprintf(buf, n, "a producer (slot %u, pid %u) is inside a claim at the tail (%lld) "
			 "that it began as the topic's only producer (stopped? in a debugger?); "
			 "producers that opened since wait for it",
			 pi.slot, pi.pid, (long long)pi.claim);
		return 5;
	}

	cli_daemon_look(t, in, &d);
	switch (d.state) {
	case CLI_DAEMON_SILENT:
		cli_daemon_why(&d, buf, n);
		return 6;
	case CLI_DAEMON_UNATTACHED:
		cli_daemon_why(&d, buf, n);
		return 7;
	case CLI_DAEMON_ALIVE:
		break;
	default:
		cli_daemon_why(&d, why, sizeof(why));
		if (d.served_err) {
			snprintf(buf, n, "%s", why);
			return 8;
		}
		snprintf(buf, n, "no spillwayd is running (%s)", why);
		return 1;
	}
	if (in->spill_error) {
		snprintf(buf, n, "spillwayd cannot write its segments: %s (see its log)",
			 strerror(-in->spill_error));
		return 2;
	}
	if (in->stall_slot >= 0) {
		snprintf(buf, n, "a producer (slot %d, pid %u) holds the record at %llu uncommitted "
			 "(stopped? in a debugger?)",
			 in->stall_slot, in->stall_pid, (unsigned long long)in->stall_position);
		return 3;
	}
	snprintf(buf, n, "the ring is full of bytes spillwayd has not spilled yet (the disk is "
		 "slower than the producers: back-pressure)");
	return 4;
}
