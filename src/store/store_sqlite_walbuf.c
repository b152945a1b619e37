/* SQLite backend, continued: a VFS that joins the two writes of each WAL frame. SQLite
 * writes a frame as its 24-byte header and then its page, two pwrite calls, about a dozen
 * system calls per accepted message; this VFS holds the header and writes it with the page
 * that follows it, in one call.
 *
 * Nothing else is held: only a 24-byte write at a frame's start counts as a header, and once
 * a frame's page is written, the frame is in the file. A lone header (walRewriteChecksums
 * rewrites headers alone) is written before any other call on the file, and SQLite makes no
 * other call between a header and its page. So when another connection reads the WAL, or
 * this one rolls back, no byte of this one's is waiting here (an earlier version that held
 * whole transactions could write a rolled-back transaction's frames over another writer's:
 * review of 9fa63c6). */
#include "store/store_sqlite.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WAL_FILE_HEADER 32
#define WAL_FRAME_HEADER 24
#define WAL_MAX_PAGE 65536

struct walbuf_file {
    sqlite3_file base;
    sqlite3_file *real; /* the default VFS's file, right after this struct */
    char *frame;        /* a held header, then room for its page */
    bool held;
    sqlite3_int64 start; /* the held header's file offset */
    int page_size;       /* from the WAL header; 0 until known */
};

static sqlite3_vfs walbuf_vfs;
static sqlite3_vfs *walbuf_real_vfs;
static pthread_once_t walbuf_once = PTHREAD_ONCE_INIT;

static int walbuf_flush(struct walbuf_file *f)
{
    if (!f->held)
        return SQLITE_OK;
    f->held = false;
    return f->real->pMethods->xWrite(f->real, f->frame, WAL_FRAME_HEADER, f->start);
}

static int wal_header_page_size(const unsigned char *h)
{
    uint32_t size = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
    return size == 1 ? WAL_MAX_PAGE : size > WAL_MAX_PAGE ? 0 : (int)size; /* 65536 is 1 */
}

/* Whether a 24-byte write at off is a frame header: one at a frame's start. Another write of
 * 24 bytes can exist (the rest of a padding frame after the sync point, when the file lacks
 * powersafe overwrite): it must not be held, since no page follows it. */
static bool frame_start(struct walbuf_file *f, sqlite3_int64 off)
{
    if (!f->page_size) { /* the WAL was written before this connection opened it */
        unsigned char h[WAL_FILE_HEADER];
        if (f->real->pMethods->xRead(f->real, h, sizeof h, 0) == SQLITE_OK)
            f->page_size = wal_header_page_size(h);
    }
    if (f->page_size < 512 || f->page_size > WAL_MAX_PAGE || off < WAL_FILE_HEADER)
        return false;
    return (off - WAL_FILE_HEADER) % (WAL_FRAME_HEADER + f->page_size) == 0;
}

static int walbuf_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 off)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    if (off == 0 && amt >= WAL_FILE_HEADER) /* a new WAL header: its page size */
        f->page_size = wal_header_page_size(data);
    if (f->held && off == f->start + WAL_FRAME_HEADER && amt > 0 && amt <= WAL_MAX_PAGE) {
        memcpy(f->frame + WAL_FRAME_HEADER, data, (size_t)amt); /* the header's page */
        f->held = false;
        return f->real->pMethods->xWrite(f->real, f->frame, WAL_FRAME_HEADER + amt, f->start);
    }
    int rc = walbuf_flush(f);
    if (rc != SQLITE_OK)
        return rc;
    bool header = amt == WAL_FRAME_HEADER && frame_start(f, off);
    if (header && !f->frame)
        f->frame = malloc(WAL_FRAME_HEADER + WAL_MAX_PAGE);
    if (!header || !f->frame)
        return f->real->pMethods->xWrite(f->real, data, amt, off);
    memcpy(f->frame, data, WAL_FRAME_HEADER);
    f->held = true;
    f->start = off;
    return SQLITE_OK;
}

static int walbuf_close(sqlite3_file *file)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    int rc = walbuf_flush(f);
    int crc = f->real->pMethods->xClose(f->real);
    free(f->frame);
    f->frame = NULL;
    return rc != SQLITE_OK ? rc : crc;
}

static int walbuf_read(sqlite3_file *file, void *out, int amt, sqlite3_int64 off)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    int rc = walbuf_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, amt, off);
}

static int walbuf_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    int rc = walbuf_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int walbuf_sync(sqlite3_file *file, int flags)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    int rc = walbuf_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int walbuf_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    int rc = walbuf_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int walbuf_lock(sqlite3_file *file, int level)
{
    sqlite3_file *real = ((struct walbuf_file *)file)->real;
    return real->pMethods->xLock(real, level);
}

static int walbuf_unlock(sqlite3_file *file, int level)
{
    sqlite3_file *real = ((struct walbuf_file *)file)->real;
    return real->pMethods->xUnlock(real, level);
}

static int walbuf_check_reserved(sqlite3_file *file, int *out)
{
    sqlite3_file *real = ((struct walbuf_file *)file)->real;
    return real->pMethods->xCheckReservedLock(real, out);
}

/* Written out first: no file control reads the data, but none is frequent either. */
static int walbuf_file_control(sqlite3_file *file, int op, void *arg)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    int rc = walbuf_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int walbuf_sector_size(sqlite3_file *file)
{
    sqlite3_file *real = ((struct walbuf_file *)file)->real;
    return real->pMethods->xSectorSize(real);
}

static int walbuf_device(sqlite3_file *file)
{
    sqlite3_file *real = ((struct walbuf_file *)file)->real;
    return real->pMethods->xDeviceCharacteristics(real);
}

/* Version 1: SQLite maps shared memory and pages through the database file, never the WAL. */
static const sqlite3_io_methods walbuf_methods = {
    .iVersion = 1,
    .xClose = walbuf_close,
    .xRead = walbuf_read,
    .xWrite = walbuf_write,
    .xTruncate = walbuf_truncate,
    .xSync = walbuf_sync,
    .xFileSize = walbuf_file_size,
    .xLock = walbuf_lock,
    .xUnlock = walbuf_unlock,
    .xCheckReservedLock = walbuf_check_reserved,
    .xFileControl = walbuf_file_control,
    .xSectorSize = walbuf_sector_size,
    .xDeviceCharacteristics = walbuf_device,
};

/* Every other file is the default VFS's own, opened in place (szOsFile leaves room). */
static int walbuf_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                       int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL))
        return walbuf_real_vfs->xOpen(walbuf_real_vfs, name, file, flags, out_flags);
    struct walbuf_file *f = (struct walbuf_file *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = walbuf_real_vfs->xOpen(walbuf_real_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods)
            f->real->pMethods->xClose(f->real);
        return rc;
    }
    f->base.pMethods = &walbuf_methods;
    return SQLITE_OK;
}

static void walbuf_register(void)
{
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    if (!real)
        return;
    walbuf_real_vfs = real;
    walbuf_vfs = *real; /* its other methods, pAppData and limits, unchanged */
    walbuf_vfs.pNext = NULL;
    walbuf_vfs.zName = "sesame-walbuf";
    walbuf_vfs.szOsFile = (int)sizeof(struct walbuf_file) + real->szOsFile;
    walbuf_vfs.xOpen = walbuf_open;
    if (sqlite3_vfs_register(&walbuf_vfs, 0) != SQLITE_OK)
        walbuf_real_vfs = NULL;
}

const char *sqlite_walbuf_vfs(void)
{
    pthread_once(&walbuf_once, walbuf_register);
    return walbuf_real_vfs ? walbuf_vfs.zName : NULL;
}
