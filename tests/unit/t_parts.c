/*
 * t_parts.c -- the optional parts (CMake's WV_WITH_S3, WV_WITH_RADOS,
 * WV_WITH_HDF5): a library built without one refuses what needs it with
 * WV_UNSUPPORTED and a message naming the option; one built with it does
 * not. Runs in every build (the minimal one of make check included).
 */
#include "wv_int.h"
#include "wvtest.h"

#include <dirent.h>

#if !defined(WV_HAVE_RADOS) || !defined(WV_HAVE_S3)
/* The message of a failed wv_repo_open of uri, and its code. */
static int open_msg(const char *uri, char *msg, size_t cap)
{
    wv_repo *r = NULL;
    msg[0] = '\0';
    int rc = wv_repo_open(uri, msg, cap, &r);
    if (r)
        wv_repo_close(r);
    return rc;
}
#endif

TEST_IMPL(parts_stores)
{
#if defined(WV_HAVE_RADOS) && defined(WV_HAVE_S3)
    WVTEST_SKIP("s3:// and rados:// are built in (their suites need the "
                "Ceph fixture)");
#endif
    char msg[WV_ERRBUF_SIZE];
    int rc;
    (void)rc;
    (void)msg;
#ifndef WV_HAVE_RADOS
    rc = open_msg("rados://wvpool/nosuchrepo", msg, sizeof msg);
    ASSERT_EQ(rc, WV_UNSUPPORTED);
    ASSERT_STREQ(msg, "rados://wvpool/nosuchrepo: built without RADOS "
                      "support (WV_WITH_RADOS=OFF)");
#endif
#ifndef WV_HAVE_S3
    rc = open_msg("s3://bucket/repo", msg, sizeof msg);
    ASSERT_EQ(rc, WV_UNSUPPORTED);
    ASSERT_STREQ(msg, "s3://bucket/repo: built without S3 support "
                      "(WV_WITH_S3=OFF)");
    wv_model *m = NULL;
    char eb[WV_ERRBUF_SIZE] = "";
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    o.errbuf = eb;
    o.errbuf_size = sizeof eb;
    ASSERT_EQ(wv_model_load("http://127.0.0.1:1/w.safetensors", &o, &m),
              WV_UNSUPPORTED);
    ASSERT(m == NULL);
    ASSERT_CONTAINS(eb, "http://127.0.0.1:1/w.safetensors: built without "
                        "S3 support (WV_WITH_S3=OFF)");
#endif
}

#ifndef WV_HAVE_HDF5
/* Entries of the directory (the saves' temporary files included). */
static int count_entries(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}
#endif

TEST_IMPL(parts_hdf5)
{
    const char *fx =
        wvtest_fixture("h5", "keras2-weights-dearj611/model_weights.h5");
    char out[512], eb[WV_ERRBUF_SIZE] = "";
    wv_model *m = NULL;
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    o.errbuf = eb;
    o.errbuf_size = sizeof eb;
    int rc = wv_model_load(fx, &o, &m);
#ifdef WV_HAVE_HDF5
    ASSERT_OK(rc);
    ASSERT(wv_model_count(m) > 0);
    snprintf(out, sizeof out, "%s/again.h5", wvtest_tmpdir());
    ASSERT_OK(wv_model_save(m, out, NULL));
#else
    ASSERT_EQ(rc, WV_UNSUPPORTED);
    ASSERT(m == NULL);
    ASSERT_CONTAINS(eb, "model_weights.h5: Keras HDF5: built without HDF5 "
                        "support (WV_WITH_HDF5=OFF)");
    /* writing one: refused, nothing left behind */
    ASSERT_OK(wv_model_new(&m));
    float v[3] = {1, 2, 3};
    uint64_t s[1] = {3};
    ASSERT_OK(wv_model_add(m, "w", WV_F32, 1, s, v, sizeof v, WV_DATA_COPY));
    int before = count_entries(wvtest_tmpdir());
    snprintf(out, sizeof out, "%s/w.h5", wvtest_tmpdir());
    ASSERT_EQ(wv_model_save(m, out, NULL), WV_UNSUPPORTED);
    ASSERT_CONTAINS(wv_model_errmsg(m), "w.h5: Keras HDF5: built without "
                                        "HDF5 support (WV_WITH_HDF5=OFF)");
    ASSERT_EQ(count_entries(wvtest_tmpdir()), before);
    /* the format is still known by name and extension */
    wv_format f;
    ASSERT_OK(wv_format_from_name("keras", &f));
    ASSERT_EQ(f, WV_FMT_KERAS);
    ASSERT_OK(wv_format_from_path("x.weights.h5", &f));
    ASSERT_EQ(f, WV_FMT_KERAS);
#endif
    wv_model_free(m);
}
