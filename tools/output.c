/* SPDX-License-Identifier: MIT */
/*
 * output.c - how records leave the CLI: lines, raw, lenpfx (u32 little-endian
 * length then the bytes, the same framing produce reads), json (one object a
 * line; data as UTF-8 text when valid, else base64 with "encoding":"base64")
 * and hex (one line of lowercase hex per record).
 */
#include "cli.h"

#include <errno.h>
#include <string.h>

bool out_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		uint32_t cp;
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07;
		else
			return false;
		if (i + k >= n) /* the continuation bytes are i+1 .. i+k */
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

void out_json_str(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

static void base64(FILE *f, const uint8_t *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputc(tab[(v >> 6) & 63], f);
		fputc(tab[v & 63], f);
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputs("==", f);
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputc(tab[(v >> 6) & 63], f);
		fputc('=', f);
	}
}

static void hex(FILE *f, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		fputc(digits[p[i] >> 4], f);
		fputc(digits[p[i] & 15], f);
	}
}

static void json(FILE *f, const struct spw_record *r)
{
	const uint8_t *p = r->data;
	bool text = out_utf8_valid(p, r->len);
	char ts[48];

	cli_iso8601(r->timestamp_ns, ts, sizeof(ts));
	fprintf(f, "{\"position\":%lld,\"timestamp_ns\":%llu,\"timestamp\":\"%s\",\"length\":%u,",
		(long long)r->position, (unsigned long long)r->timestamp_ns, ts, r->len);
	if (text) {
		fputs("\"encoding\":\"utf-8\",\"data\":", f);
		out_json_str(f, r->data, r->len);
	} else {
		fputs("\"encoding\":\"base64\",\"data\":\"", f);
		base64(f, p, r->len);
		fputc('"', f);
	}
	fputs("}\n", f);
}

int out_record(FILE *f, enum fmt fmt, const struct spw_record *r)
{
	uint8_t le[4] = { (uint8_t)r->len, (uint8_t)(r->len >> 8), (uint8_t)(r->len >> 16),
			  (uint8_t)(r->len >> 24) };

	switch (fmt) {
	case FMT_LINES:
		fwrite(r->data, 1, r->len, f);
		fputc('\n', f);
		break;
	case FMT_RAW:
		fwrite(r->data, 1, r->len, f);
		break;
	case FMT_LENPFX:
		fwrite(le, 1, 4, f);
		fwrite(r->data, 1, r->len, f);
		break;
	case FMT_JSON:
		json(f, r);
		break;
	case FMT_HEX:
		hex(f, r->data, r->len);
		fputc('\n', f);
		break;
	}
	return ferror(f) ? -(errno ? errno : EIO) : 0;
}

void out_preview(FILE *f, const uint8_t *p, size_t n, size_t max)
{
	bool text = out_utf8_valid(p, n);

	for (size_t i = 0; text && i < n && i < max; i++)
		if (p[i] < 0x20 && p[i] != '\n' && p[i] != '\t')
			text = false;
	if (text) {
		out_json_str(f, (const char *)p, n < max ? n : max);
	} else {
		fputs("hex:", f);
		hex(f, p, n < max / 2 ? n : max / 2);
	}
	if (n > (text ? max : max / 2))
		fputs("...", f);
}
