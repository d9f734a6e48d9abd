/* SPDX-License-Identifier: MIT */
/* _records.c - spillway._records: turns a batch of struct spw_record (what
 * spw_reader_read fills, ring/spillway.h) into a list of Records in one C
 * call, so that iterating a replay from Python costs one loop step per record
 * (docs/python.md has the figures). Built by python/build_api.py beside the
 * API-mode cffi module and used with it; ABI mode does the same in Python
 * (python/spillway/__init__.py, Reader.read).
 *
 *   decode(addr, n, views) -> list of Record
 *       addr: the address of n struct spw_record. views None: .data is bytes
 *       (copied). views a list: .data is a read-only memoryview of the
 *       reader's own buffer, appended to views too.
 *   release(views): releases every view in the list and empties it: a view
 *       used afterwards raises ValueError instead of reading reused memory.
 *
 * Record keeps position and timestamp as C integers (Python ints are made on
 * access), and data. datetime is a property that calls the function set by
 * set_datetime() (the package passes one taking ns, so the conversion lives
 * in one place, python/spillway/__init__.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>

#include "spillway.h"

typedef struct {
	PyObject_HEAD
	int64_t position;
	uint64_t timestamp;
	PyObject *data;
} record_obj;

static PyObject *datetime_fn;      /* set_datetime(): ns -> datetime */
static PyObject *release_method;   /* memoryview.release, looked up once */

static PyTypeObject record_type;

static PyObject *record_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *names[] = { "position", "timestamp", "data", NULL };
	long long position;
	unsigned long long timestamp;
	PyObject *data, *ts;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "LOO:Record", names, &position, &ts, &data))
		return NULL;
	/* Checked: "K" would wrap a negative timestamp silently. */
	timestamp = PyLong_AsUnsignedLongLong(ts);
	if (timestamp == (unsigned long long)-1 && PyErr_Occurred())
		return NULL;
	/* Bytes-like only: a Record is not tracked by the garbage collector, so
	 * its data must not be able to refer back to it (a list could). */
	if (!PyObject_CheckBuffer(data)) {
		PyErr_Format(PyExc_TypeError, "Record: data must be bytes-like, not %.100s",
			     Py_TYPE(data)->tp_name);
		return NULL;
	}
	record_obj *r = (record_obj *)type->tp_alloc(type, 0);
	if (!r)
		return NULL;
	r->position = position;
	r->timestamp = timestamp;
	Py_INCREF(data);
	r->data = data;
	return (PyObject *)r;
}

static void record_dealloc(record_obj *r)
{
	Py_XDECREF(r->data);
	Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *record_repr(record_obj *r)
{
	Py_ssize_t len = PyObject_Length(r->data);
	if (len < 0) { /* a released view has no length: say so, do not fail */
		PyErr_Clear();
		return PyUnicode_FromFormat("Record(position=%lld, timestamp=%llu, released)",
					    (long long)r->position,
					    (unsigned long long)r->timestamp);
	}
	return PyUnicode_FromFormat("Record(position=%lld, timestamp=%llu, len=%zd)",
				    (long long)r->position, (unsigned long long)r->timestamp, len);
}

static PyObject *record_datetime(record_obj *r, void *unused)
{
	(void)unused;
	if (!datetime_fn) {
		PyErr_SetString(PyExc_RuntimeError, "spillway._records: set_datetime() not called");
		return NULL;
	}
	PyObject *ns = PyLong_FromUnsignedLongLong(r->timestamp);
	if (!ns)
		return NULL;
	PyObject *dt = PyObject_CallOneArg(datetime_fn, ns);
	Py_DECREF(ns);
	return dt;
}

static PyObject *record_reduce(record_obj *r, PyObject *unused)
{
	(void)unused;
	return Py_BuildValue("O(LKO)", (PyObject *)Py_TYPE(r), (long long)r->position,
			     (unsigned long long)r->timestamp, r->data);
}

static PyMethodDef record_methods[] = {
	{ "__reduce__", (PyCFunction)record_reduce, METH_NOARGS, "pickle and copy support" },
	{ NULL, NULL, 0, NULL },
};

static PyMemberDef record_members[] = {
	{ "position", T_LONGLONG, offsetof(record_obj, position), READONLY,
	  "the record's position in the topic's log (bytes)" },
	{ "timestamp", T_ULONGLONG, offsetof(record_obj, timestamp), READONLY,
	  "ns since the epoch (CLOCK_REALTIME, taken when the producer claimed it)" },
	{ "data", T_OBJECT_EX, offsetof(record_obj, data), READONLY,
	  "the payload: bytes, or a read-only memoryview with zero_copy=True" },
	{ NULL, 0, 0, 0, NULL },
};

static PyGetSetDef record_getset[] = {
	{ "datetime", (getter)record_datetime, NULL, "the timestamp as an aware UTC datetime",
	  NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject record_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "spillway.Record",
	.tp_basicsize = sizeof(record_obj),
	.tp_dealloc = (destructor)record_dealloc,
	.tp_repr = (reprfunc)record_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "One record: .position (int), .timestamp (ns since the epoch, int), .data "
		  "(bytes, or a read-only memoryview with zero_copy=True) and .datetime (UTC).",
	.tp_methods = record_methods,
	.tp_members = record_members,
	.tp_getset = record_getset,
	.tp_new = record_new,
};

/* A read-only view of one record's payload that shares the batch's base view
 * (its managed buffer): what base[a:b] makes, without the slice object and
 * index conversions (PyMemoryView_FromObject gives a new view of the same
 * buffer, 1-D unsigned bytes, contiguous; narrowing it to the record means
 * setting the start and the one dimension, as slicing does). It stays tracked
 * by the garbage collector: memoryview's dealloc expects that. */
static PyObject *record_view(PyObject *base, const struct spw_record *s)
{
	PyObject *v = PyMemoryView_FromObject(base);
	if (!v)
		return NULL;
	Py_buffer *b = PyMemoryView_GET_BUFFER(v);
	if (s->data) /* (an empty record may have none: keep the base's) */
		b->buf = (void *)s->data;
	b->len = s->len;
	b->shape[0] = s->len;
	return v;
}

/* Not GC-tracked: a Record refers only to its data (bytes or a view without
 * an exporter object), which cannot refer back to it. */
static PyObject *decode(PyObject *mod, PyObject *args)
{
	(void)mod;
	unsigned long long addr;
	Py_ssize_t n;
	PyObject *views;
	if (!PyArg_ParseTuple(args, "KnO:decode", &addr, &n, &views))
		return NULL;
	if (views != Py_None && !PyList_CheckExact(views)) {
		PyErr_SetString(PyExc_TypeError, "decode: views is None or a list");
		return NULL;
	}
	if (n < 0 || (n > 0 && !addr)) {
		PyErr_SetString(PyExc_ValueError, "decode: bad batch");
		return NULL;
	}
	const struct spw_record *recs = (const struct spw_record *)(uintptr_t)addr;
	PyObject *out = PyList_New(n), *base = NULL;
	if (!out)
		return NULL;
	if (views != Py_None && n > 0) {
		/* The managed buffer every view of this batch shares: its own
		 * extent does not matter (each view says where its record is). */
		static char none; /* a batch of empty records may have no address */

		base = PyMemoryView_FromMemory(recs[0].data ? (char *)recs[0].data : &none,
					       recs[0].data ? recs[0].len : 0, PyBUF_READ);
		if (!base || PyList_Append(views, base) < 0)
			goto fail;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		const struct spw_record *s = &recs[i];
		PyObject *data;
		if (views == Py_None) {
			data = PyBytes_FromStringAndSize(s->data, s->len);
		} else {
			data = record_view(base, s);
			if (data && PyList_Append(views, data) < 0)
				Py_CLEAR(data);
		}
		if (!data)
			goto fail;
		record_obj *r = PyObject_New(record_obj, &record_type);
		if (!r) {
			Py_DECREF(data);
			goto fail;
		}
		r->position = s->position;
		r->timestamp = s->timestamp_ns;
		r->data = data;
		PyList_SET_ITEM(out, i, (PyObject *)r);
	}
	Py_XDECREF(base);
	return out;
fail:
	Py_XDECREF(base);
	Py_DECREF(out); /* PyList_New's unset items are NULL: XDECREF'd */
	return NULL;
}

/* Release every view of the batch, all or none. None while something could
 * still reach the batch's memory: a buffer exported from one of our views
 * (a NumPy array over it, cffi's from_buffer), or a view made from one (a
 * slice, memoryview(v), cast()), which shares the batch's managed buffer and
 * which Python gives us no way to release. Then BufferError, and the caller
 * neither reads into nor frees that memory. The counts come from the
 * memoryview structs of <memoryobject.h>, compiled against this Python. */
static PyObject *release(PyObject *mod, PyObject *views)
{
	_PyManagedBufferObject *mb = NULL;
	Py_ssize_t ours = 0, n;

	(void)mod;
	if (!PyList_CheckExact(views)) {
		PyErr_SetString(PyExc_TypeError, "release: a list of memoryviews");
		return NULL;
	}
	n = PyList_GET_SIZE(views);
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *v = PyList_GET_ITEM(views, i);
		PyMemoryViewObject *m = (PyMemoryViewObject *)v;

		if (!PyMemoryView_Check(v)) {
			PyErr_SetString(PyExc_TypeError, "release: a list of memoryviews");
			return NULL;
		}
		if (m->flags & _Py_MEMORYVIEW_RELEASED)
			continue; /* the user released it: it counts no more */
		if (m->exports > 0) {
			PyErr_SetString(PyExc_BufferError,
					"spillway: a buffer exported from a record's .data is still held; "
					"copy what you keep (bytes(...)) and release it before the next "
					"read or close");
			return NULL;
		}
		mb = m->mbuf;
		ours++;
	}
	if (mb && mb->exports > ours) {
		PyErr_SetString(PyExc_BufferError,
				"spillway: a view made from a record's .data (a slice, memoryview(), "
				"cast()) is still alive; copy what you keep (bytes(...)) and drop it "
				"before the next read or close");
		return NULL;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *rc = PyObject_CallOneArg(release_method, PyList_GET_ITEM(views, i));

		if (!rc)
			return NULL;
		Py_DECREF(rc);
	}
	if (PyList_SetSlice(views, 0, n, NULL) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *set_datetime(PyObject *mod, PyObject *fn)
{
	(void)mod;
	if (!PyCallable_Check(fn)) {
		PyErr_SetString(PyExc_TypeError, "set_datetime: a callable");
		return NULL;
	}
	Py_INCREF(fn);
	Py_XSETREF(datetime_fn, fn);
	Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
	{ "decode", decode, METH_VARARGS, "decode(addr, n, views) -> list of Record" },
	{ "release", release, METH_O, "release(views): release every view, empty the list" },
	{ "set_datetime", set_datetime, METH_O, "set_datetime(fn): ns -> datetime, for .datetime" },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "spillway._records",
	"Batches of struct spw_record to Records in one call (python/spillway/_records.c).", -1,
	methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__records(void)
{
	if (PyType_Ready(&record_type) < 0)
		return NULL;
	release_method = PyObject_GetAttrString((PyObject *)&PyMemoryView_Type, "release");
	if (!release_method)
		return NULL;
	PyObject *m = PyModule_Create(&module);
	if (!m)
		return NULL;
	Py_INCREF(&record_type);
	if (PyModule_AddObject(m, "Record", (PyObject *)&record_type) < 0) {
		Py_DECREF(&record_type);
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
