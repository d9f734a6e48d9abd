/* SPDX-License-Identifier: MIT */
/*
 * results.c - medians of the repeated runs, written as the comparison's
 * files (results.h): compare.tsv (the table the README shows),
 * compare_latency.tsv (percentiles, one gnuplot block per size) and
 * compare_env.txt (key=value: machine, settings, what each system was
 * granted, failures). NA marks what was not measured.
 */
#include "results.h"

#include "aeron.h"

#include "../../tools/bench_topo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double median(const double *v, int n)
{
	double s[MAX_REPS];

	if (n <= 0)
		return -1;
	memcpy(s, v, sizeof(double) * (size_t)n);
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* A tab, then v with `decimals` decimals, or NA when v < 0 (not measured). */
static void put_num(FILE *f, double v, int decimals)
{
	if (v < 0)
		fputs("\tNA", f);
	else
		fprintf(f, "\t%.*f", decimals, v);
}

bool table_selected(const struct table *t, const struct sysdef *sd)
{
	const char *p = t->only;
	size_t n = strlen(sd->name);

	if (sd->aeron && !t->aeron)
		return false;
	if (!p || !*p)
		return true;
	while ((p = strstr(p, sd->name)) != NULL) {
		bool start = p == t->only || p[-1] == ',', end = p[n] == '\0' || p[n] == ',';

		if (start && end)
			return true;
		p += n;
	}
	return false;
}

static FILE *open_out(const char *dir, const char *name)
{
	char path[4096 + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "compare: cannot write %s: %s\n", path, strerror(errno));
	return f;
}

/* The median over the rounds both measured of mine[r] / aeron[r]: each
 * ratio compares two runs of the same round (same probe, same neighbours). */
static double round_ratio(const double *mine, const double *aeron, int reps)
{
	double v[MAX_REPS];
	int n = 0;

	for (int r = 0; r < reps && r < MAX_REPS; r++)
		if (mine[r] > 0 && aeron[r] > 0)
			v[n++] = mine[r] / aeron[r];
	return median(v, n);
}

/* "ok", or "failed (1 of 6 runs): <first reason>", without tabs or newlines. */
static void put_status(FILE *f, const struct cell *cl)
{
	if (!cl->nfail) {
		fputs(cl->nruns ? "\tok" : "\tnot run", f);
		return;
	}
	fprintf(f, "\tfailed (%d of %d runs): ", cl->nfail, cl->nruns);
	for (const char *p = cl->err; *p; p++)
		fputc(*p == '\t' || *p == '\n' || *p == '\r' ? ' ' : *p, f);
}

static void write_tsv(FILE *f, const struct table *t, const struct run_info *ri)
{
	const struct cell (*ae)[MAX_SIZES] = NULL;

	for (size_t s = 0; s < t->nsys; s++)
		if (t->sys[s].aeron && table_selected(t, &t->sys[s]))
			ae = &t->cells[s];
	fprintf(f, "system\tsize\tmsgs_per_s\tmb_per_s\trtt_p50_ns\trtt_p99_ns\tstatus\tcpus"
		   "\tline_rtt_ns\ttp_vs_aeron\trtt_p50_vs_aeron\n");
	for (size_t s = 0; s < t->nsys; s++) {
		if (!table_selected(t, &t->sys[s]))
			continue;
		for (int z = 0; z < t->nsizes; z++) {
			const struct cell *cl = &t->cells[s][z];
			double r = median(cl->rate, cl->n);

			fprintf(f, "%s\t%u", t->sys[s].name, t->sizes[z]);
			put_num(f, r, 0);
			put_num(f, r < 0 ? -1 : r * t->sizes[z] / 1e6, 1);
			put_num(f, median(cl->p50, cl->nrtt), 0);
			put_num(f, median(cl->p99, cl->nrtt), 0);
			put_status(f, cl);
			fprintf(f, "\t%d,%d", ri->pu[0], ri->pu[1]);
			put_num(f, median(cl->probe, cl->nprobe), 1);
			put_num(f, ae ? round_ratio(cl->rrate, (*ae)[z].rrate, ri->reps) : -1, 3);
			put_num(f, ae ? round_ratio(cl->rp50, (*ae)[z].rp50, ri->reps) : -1, 3);
			fputc('\n', f);
		}
	}
}

/* One block per size with results, two blank lines apart: gnuplot's `index`. */
static void write_latency(FILE *f, const struct table *t)
{
	fprintf(f, "# system\tsize\tp50_ns\tp90_ns\tp99_ns\tp999_ns\tmax_ns\n");
	for (int z = 0, blocks = 0; z < t->nsizes; z++) {
		int rows = 0;

		for (size_t s = 0; s < t->nsys; s++) {
			const struct cell *cl = &t->cells[s][z];

			if (!table_selected(t, &t->sys[s]) || t->sys[s].file || cl->nrtt == 0)
				continue;
			if (rows++ == 0 && blocks++)
				fprintf(f, "\n\n");
			fprintf(f, "%s\t%u", t->sys[s].name, t->sizes[z]);
			put_num(f, median(cl->p50, cl->nrtt), 0);
			put_num(f, median(cl->p90, cl->nrtt), 0);
			put_num(f, median(cl->p99, cl->nrtt), 0);
			put_num(f, median(cl->p999, cl->nrtt), 0);
			put_num(f, median(cl->max, cl->nrtt), 0);
			fputc('\n', f);
		}
	}
}

/* key=value lines for run.sh's markdown. */
static void write_env(FILE *f, const struct table *t, const struct run_info *ri)
{
	char pu0[160], pu1[160], zv[64];

	topo_pu_desc(ri->pu[0], pu0, sizeof(pu0));
	topo_pu_desc(ri->pu[1], pu1, sizeof(pu1));
	chan_zmq_version(zv, sizeof(zv));
	fprintf(f, "sender_pu=%s\nreceiver_pu=%s\nshared=%s\nline_rtt_ns=%.1f\n", pu0, pu1,
		ri->link, ri->line_rtt_ns);
	fprintf(f, "duration_s=%g\nrtt_duration_s=%g\nreps=%d\nring_bytes=%llu\n"
		   "spill_ring_bytes=%llu\ndata_dir=%s\nzmq=%s\ntimeout_s=%g\ncpus=%d,%d\n",
		ri->dur_s, ri->rtt_dur_s, ri->reps, (unsigned long long)ri->ring_bytes,
		(unsigned long long)ri->spill_ring_bytes, ri->data_dir, zv, ri->grace_s, ri->pu[0],
		ri->pu[1]);
	fprintf(f, "backoff_ns=%lld\nbatch=%u\n", (long long)ri->backoff_ns, ri->batch);
	if (ri->aeron[0])
		fprintf(f, "aeron=%s\naeron_ipc_term_length=%s\n", ri->aeron, aeron_term_desc());
	for (size_t s = 0; s < t->nsys; s++) {
		const char *name = t->sys[s].name;

		if (!table_selected(t, &t->sys[s]))
			continue;
		fprintf(f, "how.%s=%s\n", name, t->sys[s].how);
		for (int z = 0; z < t->nsizes; z++) {
			const struct cell *cl = &t->cells[s][z];

			if (cl->desc[0])
				fprintf(f, "given.%s.%u=%s\n", name, t->sizes[z], cl->desc);
			if (cl->ndurable)
				fprintf(f, "durable_mb_per_s.%s.%u=%.1f\n", name, t->sizes[z],
					median(cl->durable, cl->ndurable));
			if (cl->err[0])
				fprintf(f, "error.%s.%u=%s\n", name, t->sizes[z], cl->err);
			if (cl->redelivered)
				fprintf(f, "redelivered.%s.%u=%llu\n", name, t->sizes[z],
					(unsigned long long)cl->redelivered);
		}
	}
}

int results_write(const char *dir, const struct table *t, const struct run_info *ri)
{
	static const char *const names[3] = { "compare.tsv", "compare_latency.tsv",
					       "compare_env.txt" };
	FILE *f[3];
	int rc = 0;

	for (int i = 0; i < 3; i++)
		f[i] = open_out(dir, names[i]);
	if (f[0] && f[1] && f[2]) {
		write_tsv(f[0], t, ri);
		write_latency(f[1], t);
		write_env(f[2], t, ri);
	} else {
		rc = -1;
	}
	for (int i = 0; i < 3; i++)
		if (f[i] && fclose(f[i]))
			rc = -1;
	return rc;
}
