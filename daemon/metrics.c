/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - spillwayd's metrics: an HTTP endpoint serving the Prometheus
 * text format at /metrics (libmicrohttpd; --metrics-listen), and a textfile
 * for node_exporter's textfile collector (--metrics-textfile). The figures
 * and their format are spill/metrics.c's, as `spillway stat --prometheus`
 * prints them, plus what only the daemon counts (records, errors, blocked
 * time, its io_uring).
 *
 * libmicrohttpd runs without a thread of its own: the event loop
 * (daemon/loop.c) calls metrics_poll() every turn, so a scrape reads the
 * daemon's state without a lock and never races a topic's detach. A turn
 * lasts at most ~2 ms, which bounds the answer's delay; the gathering walks
 * the topic dirs (a few ms for hundreds of segments) once per scrape.
 */
#define _GNU_SOURCE
#include "daemon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static struct {
	struct MHD_Daemon *httpd;
	uint64_t last_poll_ns, next_textfile_ns, start_ns;
	int textfile_dir;    /* the textfile's directory, held from the start */
	const char *textfile_name;
	bool stopping;       /* the last textfile: the daemon is going */
} M = { .textfile_dir = -1 };

static int textfile_open(void);

/* ADDR:PORT, [ADDR6]:PORT, or PORT alone (then loopback: any other address
 * only when asked for). 0, or -EINVAL. */
int metrics_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2] = "127.0.0.1";
	const char *colon = strrchr(s, ':'), *port_s = colon ? colon + 1 : s;
	char *end;
	unsigned long port;

	memset(ss, 0, sizeof(*ss));
	if (colon) {
		size_t n = (size_t)(colon - s);

		if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
			s++;
			n -= 2;
		}
		if (n == 0 || n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = '\0';
	}
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (!*port_s || *end || errno || port == 0 || port > 65535)
		return -EINVAL;
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*a4);
	}
	return 0;
}

/* The exposition of every topic this daemon spills, malloc'd; NULL on
 * ENOMEM. */
static char *render(size_t *len)
{
	struct seg_metrics *m = calloc((size_t)D.ntopics + 1, sizeof(*m));
	const struct seg_metrics **pm = calloc((size_t)D.ntopics + 1, sizeof(*pm));
	struct seg_metrics_proc p = {
		.topics = D.ntopics,
		.uring_entries = D.w.ring.sq.ring_entries,
		.uring_inflight = D.w.inflight,
		.uring_submit_busy = D.w.submit_busy,
		.start_time_ns = M.start_ns,
	};
	char *buf = NULL;
	FILE *f;

	if (!m || !pm)
		goto out;
	for (int i = 0; i < D.ntopics; i++) {
		struct dtopic *dt = D.topics[i];

		snprintf(m[i].name, sizeof(m[i].name), "%s", dt->name);
		m[i].t = dt->t;
		m[i].spill = &dt->s->m;
		seg_metrics_gather(D.data_dir, &m[i]);
		m[i].alive = !M.stopping; /* this daemon serves it, until its last textfile */
		m[i].hb_age = m[i].in.daemon_heartbeat_ns &&
					      ring_realtime_ns() > m[i].in.daemon_heartbeat_ns
				      ? (double)(ring_realtime_ns() - m[i].in.daemon_heartbeat_ns) / 1e9
				      : 0;
		pm[i] = &m[i];
	}
	f = open_memstream(&buf, len);
	if (f) {
		seg_metrics_write(f, pm, D.ntopics, &p);
		if (fclose(f)) {
			free(buf);
			buf = NULL;
		}
	}
out:
	for (int i = 0; m && i < D.ntopics; i++)
		seg_metrics_free(&m[i]);
	free(m);
	free(pm);
	return buf;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ok;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	struct MHD_Response *r;
	enum MHD_Result ok;
	size_t len = 0;
	char *body;

	(void)cls, (void)version, (void)upload;
	if (!*state) { /* the first call sees only the headers: refuse at once */
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET /metrics\n");
		*state = c;
		return MHD_YES;
	}
	if (*upload_len) { /* a body with a GET: ignored */
		*upload_len = 0;
		return MHD_YES;
	}
	if (!strcmp(url, "/"))
		return reply(c, MHD_HTTP_OK, "spillwayd: the metrics are at /metrics\n");
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
	body = render(&len);
	if (!body)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	ok = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ok;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	dlog(LOG_WARN, NULL, "metrics endpoint: %s", msg);
}

int metrics_start(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	uint16_t port;
	/* epoll, not select(): the daemon's fds (segments of up to 256 topics)
	 * may pass FD_SETSIZE. */
	unsigned flags = MHD_USE_ERROR_LOG | MHD_USE_EPOLL;

	M.start_ns = ring_realtime_ns();
	if (D.metrics_textfile[0] && textfile_open())
		return 1;
	if (!D.metrics_listen[0])
		return 0;
	if (metrics_parse_listen(D.metrics_listen, &ss, &len)) {
		dlog(LOG_ERROR, NULL, "--metrics-listen %s: expected [ADDR:]PORT", D.metrics_listen);
		return 1;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
	/* No thread (the loop polls it), at most 16 connections, each dropped
	 * after 10 s idle. */
	M.httpd = MHD_start_daemon(flags, port, NULL, NULL, handle, NULL, MHD_OPTION_EXTERNAL_LOGGER,
				   mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				   MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT,
				   10u, MHD_OPTION_END);
	if (!M.httpd) {
		dlog(LOG_ERROR, NULL, "cannot serve metrics on %s (address in use? not local?)",
		     D.metrics_listen);
		return 1;
	}
	{
		char host[INET6_ADDRSTRLEN];
		bool v6 = ss.ss_family == AF_INET6;
		const void *a = v6 ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
				   : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;

		inet_ntop(ss.ss_family, a, host, sizeof(host));
		dlog(LOG_INFO, NULL, "metrics at http://%s%s%s:%u/metrics", v6 ? "[" : "", host,
		     v6 ? "]" : "",
		     ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
			      : ((struct sockaddr_in *)&ss)->sin_port));
	}
	return 0;
}

/* The textfile's directory, opened once at start (the path as the admin
 * gave it): every write then goes through that fd, so a directory swapped
 * for a link later is never followed (the daemon runs as root). A
 * directory others may write to is only warned about: node_exporter's is
 * often another user's. 0, or 1 after saying why. */
static int textfile_open(void)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(D.metrics_textfile, '/');
	struct stat st;

	M.textfile_name = slash ? slash + 1 : D.metrics_textfile;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - D.metrics_textfile) : 1,
		 slash ? D.metrics_textfile : ".");
	if (!dir[0])
		snprintf(dir, sizeof(dir), "/");
	if (!*M.textfile_name) {
		dlog(LOG_ERROR, NULL, "--metrics-textfile %s: names a directory, not a file",
		     D.metrics_textfile);
		return 1;
	}
	M.textfile_dir = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (M.textfile_dir < 0 || fstat(M.textfile_dir, &st)) {
		dlog(LOG_ERROR, NULL, "--metrics-textfile: cannot open the directory %s: %s", dir,
		     strerror(errno));
		return 1;
	}
	if ((st.st_mode & 0002) && !(st.st_mode & S_ISVTX))
		dlog(LOG_WARN, NULL, "--metrics-textfile: %s is writable by anyone: others can "
		     "replace the figures", dir);
	return 0;
}

/* Write the textfile as node_exporter wants it: whole or not at all (a
 * temporary created O_EXCL next to it, never through a link, then renamed
 * over it), all through the held directory fd. */
static void write_textfile(void)
{
	char tmp[NAME_MAX + 8];
	size_t len = 0;
	char *body = render(&len);
	ssize_t w = -1;
	int fd, err = 0;

	if (!body)
		return;
	snprintf(tmp, sizeof(tmp), ".%.*s.tmp", NAME_MAX - 6, M.textfile_name);
	unlinkat(M.textfile_dir, tmp, 0);
	fd = openat(M.textfile_dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0644);
	if (fd < 0) {
		err = errno;
	} else {
		w = write(fd, body, len);
		err = w < 0 ? errno : w != (ssize_t)len ? EIO : 0;
		if (close(fd) && !err)
			err = errno;
		if (!err && renameat(M.textfile_dir, tmp, M.textfile_dir, M.textfile_name))
			err = errno;
		if (err)
			unlinkat(M.textfile_dir, tmp, 0);
	}
	if (err && !D.metrics_textfile_failed)
		dlog(LOG_WARN, NULL, "cannot write the metrics textfile %s: %s (said once)",
		     D.metrics_textfile, strerror(err));
	D.metrics_textfile_failed = err != 0;
	free(body);
}

/* Producers blocked on the full ring: since when, and for how long in all
 * (spill/metrics.h). Called with the heartbeat, every 100 ms. */
void metrics_tick(uint64_t now_ns)
{
	for (int i = 0; i < D.ntopics; i++) {
		struct seg_metrics_spill *m = &D.topics[i]->s->m;
		/* Relaxed: a count for the figures (the I8 handshake reads it
		 * seq_cst, ring/wait.c). */
		uint32_t waiting = atomic_load_explicit(&D.topics[i]->t->hdr->prod_waiters,
							memory_order_relaxed);

		if (waiting && !m->blocked_since_ns) {
			m->blocked_since_ns = now_ns;
		} else if (!waiting && m->blocked_since_ns) {
			m->blocked_ns_total += now_ns - m->blocked_since_ns;
			m->blocked_since_ns = 0;
		}
	}
}

void metrics_poll(uint64_t now_ns)
{
	if (M.httpd && now_ns - M.last_poll_ns >= 1000000ull) {
		MHD_run(M.httpd);
		M.last_poll_ns = now_ns;
	}
	if (M.textfile_dir >= 0 && now_ns >= M.next_textfile_ns) {
		write_textfile();
		M.next_textfile_ns = now_ns + D.metrics_interval_ms * 1000000ull;
	}
}

void metrics_stop(void)
{
	M.stopping = true;
	if (M.textfile_dir >= 0) {
		write_textfile(); /* the last figures, spillway_daemon_up 0 */
		close(M.textfile_dir);
		M.textfile_dir = -1;
	}
	if (M.httpd)
		MHD_stop_daemon(M.httpd);
	M.httpd = NULL;
}
