/*
 * t_http.c -- the offline parts of the S3/HTTP layer (src/net): bucket and
 * prefix splitting, URLs and canonical queries, configuration from the
 * environment and the AWS files (in a temporary HOME), the INI reader,
 * the S3 XML parser on real and malformed documents, the backoff bounds,
 * and the engine's retry policy and the http:// object reader against a
 * scripted HTTP server on loopback (in a thread of this process).
 */
#include "http.h"
#include "store.h"
#include "wvtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

/* Clear every variable the configuration reads. */
static void clean_env(void)
{
    static const char *const vars[] = {
        "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION",
        "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE", "AWS_CA_BUNDLE", "WV_S3_ADDRESSING",
        "WV_S3_PART_SIZE", "WV_S3_CONCURRENCY", "WV_S3_MAX_INFLIGHT",
        "WV_S3_RETRIES", "WV_S3_ACL"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    setenv("HOME", wvtest_tmpdir(), 1);
}

TEST_IMPL(http_split)
{
    struct wv__err err = {0};
    char *b, *p;
    ASSERT_OK(wv__s3_split("bucket/a/b/", &b, &p, &err));
    ASSERT_STREQ(b, "bucket");
    ASSERT_STREQ(p, "a/b");
    wv__free(b);
    wv__free(p);
    ASSERT_OK(wv__s3_split("my.bucket-1", &b, &p, &err));
    ASSERT_STREQ(b, "my.bucket-1");
    ASSERT_STREQ(p, "");
    wv__free(b);
    wv__free(p);
    ASSERT_OK(wv__s3_split("bkt//x//", &b, &p, &err));
    ASSERT_STREQ(p, "x");
    wv__free(b);
    wv__free(p);
    const char *bad[] = {"ab/x", "-bucket/x", "bucket-/x", "bu cket/x",
                         "", "/x", "b\x01t/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wv__clearerr(&err);
        ASSERT_EQ(wv__s3_split(bad[i], &b, &p, &err), WV_MISUSE);
        ASSERT(b == NULL && p == NULL);
        ASSERT_CONTAINS(err.msg, "bucket name");
    }
    wv__clearerr(&err);
    ASSERT_EQ(wv__s3_split("bucket/a\nb", &b, &p, &err), WV_MISUSE);
}

TEST_IMPL(http_url)
{
    struct wv__s3cfg c;
    memset(&c, 0, sizeof c);
    c.endpoint = "http://127.0.0.1:7480";
    c.path_style = true;
    char *u = wv__s3_url(&c, "bkt", "p/a b+c~%.x", NULL);
    ASSERT_STREQ(u, "http://127.0.0.1:7480/bkt/p/a%20b%2Bc~%25.x");
    wv__free(u);
    u = wv__s3_url(&c, "bkt", NULL, "list-type=2");
    ASSERT_STREQ(u, "http://127.0.0.1:7480/bkt?list-type=2");
    wv__free(u);
    u = wv__s3_url(&c, "bkt", "k\xc3\xa9", NULL); /* UTF-8 bytes */
    ASSERT_STREQ(u, "http://127.0.0.1:7480/bkt/k%C3%A9");
    wv__free(u);

    c.endpoint = "https://s3.eu-west-1.amazonaws.com";
    c.path_style = false;
    u = wv__s3_url(&c, "bkt", "dir/key", "uploads=");
    ASSERT_STREQ(u, "https://bkt.s3.eu-west-1.amazonaws.com/dir/key?uploads=");
    wv__free(u);
    u = wv__s3_url(&c, "bkt", NULL, NULL);
    ASSERT_STREQ(u, "https://bkt.s3.eu-west-1.amazonaws.com/");
    wv__free(u);
    /* A dotted bucket cannot be a host name under a wildcard certificate:
     * path-style, unless asked otherwise. */
    u = wv__s3_url(&c, "my.bkt", "k", NULL);
    ASSERT_STREQ(u, "https://s3.eu-west-1.amazonaws.com/my.bkt/k");
    wv__free(u);
    c.addressing_set = true;
    u = wv__s3_url(&c, "my.bkt", "k", NULL);
    ASSERT_STREQ(u, "https://my.bkt.s3.eu-west-1.amazonaws.com/k");
    wv__free(u);
    c.endpoint = "http://minio.local:9000/base";
    u = wv__s3_url(&c, "bkt", "k", NULL);
    ASSERT_STREQ(u, "http://bkt.minio.local:9000/base/k");
    wv__free(u);
    c.path_style = true;
    u = wv__s3_url(&c, "bkt", "k", NULL);
    ASSERT_STREQ(u, "http://minio.local:9000/base/bkt/k");
    wv__free(u);

    /* Canonical queries: sorted by name, encoded, '=' always. */
    const char *n1[3] = {"prefix", "list-type", "continuation-token"};
    const char *v1[3] = {"a/b c", "2", "1+/=x"};
    char *q = wv__s3_query(n1, v1, 3);
    ASSERT_STREQ(q, "continuation-token=1%2B%2F%3Dx&list-type=2&"
                    "prefix=a%2Fb%20c");
    wv__free(q);
    const char *n2[2] = {"uploadId", "partNumber"};
    const char *v2[2] = {"2~abc_D-e.f", "10"};
    q = wv__s3_query(n2, v2, 2);
    ASSERT_STREQ(q, "partNumber=10&uploadId=2~abc_D-e.f");
    wv__free(q);
    const char *n3[1] = {"uploads"};
    const char *v3[1] = {NULL};
    q = wv__s3_query(n3, v3, 1);
    ASSERT_STREQ(q, "uploads=");
    wv__free(q);
}

TEST_IMPL(http_cfg_env)
{
    struct wv__s3cfg c;
    struct wv__err err = {0};
    clean_env();
    /* Nothing set: AWS, virtual-hosted, us-east-1, no credentials. */
    ASSERT_OK(wv__s3cfg_load(&c, "s3://b", &err));
    ASSERT_STREQ(c.endpoint, "https://s3.us-east-1.amazonaws.com");
    ASSERT_STREQ(c.region, "us-east-1");
    ASSERT(!c.path_style && !c.custom_endpoint);
    ASSERT(c.access_key == NULL && c.secret_key == NULL);
    ASSERT_EQ(c.part_size, 16 << 20);
    ASSERT_EQ(c.concurrency, 8);
    ASSERT_EQ(c.max_inflight, (size_t)256 << 20);
    ASSERT_EQ(c.retries, 6);
    ASSERT_STREQ(c.acl, "bucket-owner-full-control");
    wv__s3cfg_release(&c);
    setenv("WV_S3_ACL", "none", 1);
    ASSERT_OK(wv__s3cfg_load(&c, "s3://b", &err));
    ASSERT_STREQ(c.acl, "");
    wv__s3cfg_release(&c);
    setenv("WV_S3_ACL", "private", 1);
    ASSERT_OK(wv__s3cfg_load(&c, "s3://b", &err));
    ASSERT_STREQ(c.acl, "private");
    wv__s3cfg_release(&c);
    setenv("WV_S3_ACL", "x-amz: evil\r\nHeader: 1", 1);
    ASSERT_EQ(wv__s3cfg_load(&c, "s3://b", &err), WV_MISUSE);
    ASSERT_CONTAINS(err.msg, "WV_S3_ACL");
    wv__clearerr(&err);
    unsetenv("WV_S3_ACL");

    setenv("AWS_DEFAULT_REGION", "eu-central-1", 1);
    ASSERT_OK(wv__s3cfg_load(&c, "s3://b", &err));
    ASSERT_STREQ(c.endpoint, "https://s3.eu-central-1.amazonaws.com");
    wv__s3cfg_release(&c);
    setenv("AWS_REGION", "ap-south-1", 1); /* wins over the default */
    setenv("AWS_ENDPOINT_URL", "http://h:1/", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SECRET", 1);
    setenv("AWS_SESSION_TOKEN", "TOKEN", 1);
    ASSERT_OK(wv__s3cfg_load(&c, "s3://b", &err));
    ASSERT_STREQ(c.region, "ap-south-1");
    ASSERT_STREQ(c.endpoint, "http://h:1"); /* trailing '/' dropped */
    ASSERT(c.path_style && c.custom_endpoint);
    ASSERT_STREQ(c.access_key, "AKID");
    ASSERT_STREQ(c.secret_key, "SECRET");
    ASSERT_STREQ(c.session_token, "TOKEN");
    wv__s3cfg_release(&c);
    setenv("AWS_ENDPOINT_URL_S3", "https://s3only:2", 1);
    setenv("WV_S3_ADDRESSING", "virtual", 1);
    setenv("WV_S3_PART_SIZE", "8M", 1);
    setenv("WV_S3_CONCURRENCY", "3", 1);
    setenv("WV_S3_MAX_INFLIGHT", "1GiB", 1);
    setenv("WV_S3_RETRIES", "2", 1);
    setenv("AWS_CA_BUNDLE", "/etc/ca.pem", 1);
    ASSERT_OK(wv__s3cfg_load(&c, "s3://b", &err));
    ASSERT_STREQ(c.endpoint, "https://s3only:2");
    ASSERT(!c.path_style);
    ASSERT_EQ(c.part_size, 8 << 20);
    ASSERT_EQ(c.concurrency, 3);
    ASSERT_EQ(c.max_inflight, (size_t)1 << 30);
    ASSERT_EQ(c.retries, 2);
    ASSERT_STREQ(c.ca_bundle, "/etc/ca.pem");
    wv__s3cfg_release(&c);

    /* Bad settings are refused, naming the variable. */
    static const char *const bad[][2] = {
        {"WV_S3_ADDRESSING", "sideways"}, {"WV_S3_PART_SIZE", "4M"},
        {"WV_S3_PART_SIZE", "12Q"},       {"WV_S3_PART_SIZE", "-5"},
        {"WV_S3_CONCURRENCY", "0"},       {"WV_S3_CONCURRENCY", "65"},
        {"WV_S3_RETRIES", "x"},           {"AWS_ENDPOINT_URL_S3", "ftp://x"},
        {"AWS_ENDPOINT_URL_S3", "http://u:p@host"},
        {"AWS_REGION", "us east"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *old = getenv(bad[i][0]) ? strdup(getenv(bad[i][0])) : NULL;
        setenv(bad[i][0], bad[i][1], 1);
        wv__clearerr(&err);
        ASSERT_EQ(wv__s3cfg_load(&c, "s3://b", &err), WV_MISUSE);
        if (strncmp(bad[i][0], "WV_", 3) == 0)
            ASSERT_CONTAINS(err.msg, bad[i][0]);
        ASSERT(c.endpoint == NULL && c.secret_key == NULL);
        if (old)
            setenv(bad[i][0], old, 1);
        else
            unsetenv(bad[i][0]);
        free(old);
    }
    /* Half a key pair is an error that names what is missing. */
    unsetenv("AWS_SECRET_ACCESS_KEY");
    wv__clearerr(&err);
    ASSERT_EQ(wv__s3cfg_load(&c, "s3://b", &err), WV_AUTH);
    ASSERT_CONTAINS(err.msg, "AWS_SECRET_ACCESS_KEY is not");
}

TEST_IMPL(http_ini)
{
    const char *t = "# comment\n"
                    "[default]\r\n"
                    "region = us-west-2 \r\n"
                    "  ; indented comment\n"
                    "s3 =\n"
                    "  endpoint_url = http://nested:1\n"
                    "  addressing_style = path\n"
                    "endpoint_url=http://top:2\n"
                    "[ profile   dev ]\n"
                    "region=eu-west-3\n"
                    "aws_access_key_id = AK = with equals\n"
                    "[profile devx]\n"
                    "region=wrong\n";
    size_t n = strlen(t);
    char v[64];
    ASSERT_EQ(wv__ini_get(t, n, "default", NULL, "region", v, sizeof v), 1);
    ASSERT_STREQ(v, "us-west-2");
    ASSERT_EQ(wv__ini_get(t, n, "default", "s3", "endpoint_url", v, sizeof v),
              1);
    ASSERT_STREQ(v, "http://nested:1");
    ASSERT_EQ(wv__ini_get(t, n, "default", NULL, "endpoint_url", v, sizeof v),
              1);
    ASSERT_STREQ(v, "http://top:2");
    /* An indented key is not a top-level key. */
    ASSERT_EQ(wv__ini_get(t, n, "default", NULL, "addressing_style", v,
                          sizeof v),
              0);
    ASSERT_EQ(wv__ini_get(t, n, "profile dev", NULL, "region", v, sizeof v),
              1);
    ASSERT_STREQ(v, "eu-west-3");
    ASSERT_EQ(wv__ini_get(t, n, "profile dev", NULL, "aws_access_key_id", v,
                          sizeof v),
              1);
    ASSERT_STREQ(v, "AK = with equals");
    ASSERT_EQ(wv__ini_get(t, n, "dev", NULL, "region", v, sizeof v), 0);
    ASSERT_EQ(wv__ini_get(t, n, "profile de", NULL, "region", v, sizeof v),
              0);
    ASSERT_EQ(wv__ini_get(t, n, "default", "s3", "region", v, sizeof v), 0);
    /* Values are truncated to the buffer, never overrun. */
    char small[5];
    ASSERT_EQ(wv__ini_get(t, n, "default", NULL, "endpoint_url", small,
                          sizeof small),
              1);
    ASSERT_STREQ(small, "http");
    /* Unterminated last line, empty text. */
    ASSERT_EQ(wv__ini_get("[a]\nk=v", 7, "a", NULL, "k", v, sizeof v), 1);
    ASSERT_STREQ(v, "v");
    ASSERT_EQ(wv__ini_get("", 0, "a", NULL, "k", v, sizeof v), 0);
}

static void write_text(const char *path, const char *text)
{
    wvtest_write_file(path, text, strlen(text));
}

TEST_IMPL(http_cfg_files)
{
    struct wv__s3cfg c;
    struct wv__err err = {0};
    char dir[600];
    clean_env();
    snprintf(dir, sizeof dir, "%s/.aws", wvtest_tmpdir());
    mkdir(dir, 0700);
    write_text(wvtest_path(".aws/credentials"),
               "[default]\naws_access_key_id = DEFKEY\n"
               "aws_secret_access_key = DEFSECRET\n"
               "[work]\naws_access_key_id=WORKKEY\n"
               "aws_secret_access_key=WORKSECRET\n"
               "aws_session_token=WORKTOKEN\n");
    write_text(wvtest_path(".aws/config"),
               "[default]\nregion = eu-north-1\n"
               "[profile work]\nregion = us-west-1\n"
               "endpoint_url = http://general:1\n"
               "s3 =\n  endpoint_url = http://s3-specific:2\n"
               "[profile cfgonly]\naws_access_key_id = CFGKEY\n"
               "aws_secret_access_key = CFGSECRET\n"
               "endpoint_url = http://cfg:3\n");

    ASSERT_OK(wv__s3cfg_load(&c, "s3://b", &err));
    ASSERT_STREQ(c.access_key, "DEFKEY");
    ASSERT_STREQ(c.secret_key, "DEFSECRET");
    ASSERT(c.session_token == NULL);
    ASSERT_STREQ(c.region, "eu-north-1");
    ASSERT_STREQ(c.endpoint, "https://s3.eu-north-1.amazonaws.com");
    wv__s3cfg_release(&c);

    setenv("AWS_PROFILE", "work", 1);
    ASSERT_OK(wv__s3cfg_load(&c, "s3://b", &err));
    ASSERT_STREQ(c.access_key, "WORKKEY");
    ASSERT_STREQ(c.session_token, "WORKTOKEN");
    ASSERT_STREQ(c.region, "us-west-1");
    ASSERT_STREQ(c.endpoint, "http://s3-specific:2"); /* s3 block wins */
    ASSERT(c.path_style);
    wv__s3cfg_release(&c);

    /* Credentials in the config file are used too. */
    setenv("AWS_PROFILE", "cfgonly", 1);
    ASSERT_OK(wv__s3cfg_load(&c, "s3://b", &err));
    ASSERT_STREQ(c.access_key, "CFGKEY");
    ASSERT_STREQ(c.endpoint, "http://cfg:3");
    wv__s3cfg_release(&c);

    /* The environment wins over every file. */
    setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
    setenv("AWS_ENDPOINT_URL", "http://env:4", 1);
    ASSERT_OK(wv__s3cfg_load(&c, "s3://b", &err));
    ASSERT_STREQ(c.access_key, "ENVKEY");
    ASSERT_STREQ(c.endpoint, "http://env:4");
    wv__s3cfg_release(&c);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_ENDPOINT_URL");

    /* AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE move the files. */
    write_text(wvtest_path("creds2"),
               "[default]\naws_access_key_id=K2\naws_secret_access_key=S2\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", wvtest_path("creds2"), 1);
    setenv("AWS_CONFIG_FILE", wvtest_path("nonexistent"), 1);
    setenv("AWS_PROFILE", "default", 1);
    ASSERT_OK(wv__s3cfg_load(&c, "s3://b", &err));
    ASSERT_STREQ(c.access_key, "K2");
    ASSERT_STREQ(c.region, "us-east-1"); /* the config file is gone */
    wv__s3cfg_release(&c);

    /* A profile that does not exist: no credentials (not an error here:
     * the backend says what is missing). */
    setenv("AWS_PROFILE", "nobody", 1);
    ASSERT_OK(wv__s3cfg_load(&c, "s3://b", &err));
    ASSERT(c.access_key == NULL);
    wv__s3cfg_release(&c);
}

/* A ListObjectsV2 page as RGW writes it, with escaped keys. */
static const char list_page[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>b</Name><Prefix>p/</Prefix><MaxKeys>1000</MaxKeys>"
    "<IsTruncated>true</IsTruncated>"
    "<Contents><Key>p/a&amp;b&lt;c&gt;</Key>"
    "<LastModified>2026-11-28T16:30:20.582Z</LastModified>"
    "<ETag>&quot;b1946ac92492d2347c6235b4d2611184&quot;</ETag>"
    "<Size>6</Size><StorageClass>STANDARD</StorageClass></Contents>\n"
    "  <Contents><Key>p/caf&#233;&#x20AC;</Key><Size>0</Size></Contents>"
    "<!-- a comment -->"
    "<Contents><Size>18446744073709551615</Size><Key>p/z</Key>"
    "<Owner><ID>x</ID></Owner></Contents>"
    "<NextContinuationToken>1ABC+/=</NextContinuationToken>"
    "</ListBucketResult>\n";

struct seen {
    int n;
    char keys[4][64];
    char sizes[4][32];
    char etags[4][64];
};

static int collect(void *arg, const char *const *v)
{
    struct seen *s = arg;
    if (s->n < 4) {
        snprintf(s->keys[s->n], 64, "%s", v[0] ? v[0] : "(null)");
        snprintf(s->sizes[s->n], 32, "%s", v[1] ? v[1] : "(null)");
        snprintf(s->etags[s->n], 64, "%s", v[2] ? v[2] : "(null)");
    }
    s->n++;
    return 0;
}

static const char *const list_fields[3] = {"Key", "Size", "ETag"};

TEST_IMPL(http_xml_list)
{
    struct seen s;
    char v[64];
    memset(&s, 0, sizeof s);
    size_t n = strlen(list_page);
    ASSERT_OK(wv__s3xml_each(list_page, n, "Contents", list_fields, 3,
                             collect, &s));
    ASSERT_EQ(s.n, 3);
    ASSERT_STREQ(s.keys[0], "p/a&b<c>");
    ASSERT_STREQ(s.sizes[0], "6");
    ASSERT_STREQ(s.etags[0], "\"b1946ac92492d2347c6235b4d2611184\"");
    ASSERT_STREQ(s.keys[1], "p/caf\xc3\xa9\xe2\x82\xac");
    ASSERT_STREQ(s.etags[1], "(null)");
    ASSERT_STREQ(s.keys[2], "p/z");
    ASSERT_STREQ(s.sizes[2], "18446744073709551615");
    ASSERT_OK(wv__s3xml_field(list_page, n, "IsTruncated", v, sizeof v));
    ASSERT_STREQ(v, "true");
    ASSERT_OK(wv__s3xml_field(list_page, n, "NextContinuationToken", v,
                              sizeof v));
    ASSERT_STREQ(v, "1ABC+/=");
    ASSERT_EQ(wv__s3xml_field(list_page, n, "KeyCount", v, sizeof v),
              WV_NOTFOUND);
    /* Only children of the root count: <ID> is deeper. */
    ASSERT_EQ(wv__s3xml_field(list_page, n, "ID", v, sizeof v), WV_NOTFOUND);
    ASSERT_OK(wv__s3xml_root(list_page, n, v, sizeof v));
    ASSERT_STREQ(v, "ListBucketResult");
    /* An empty listing. */
    const char *empty = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                        "</ListBucketResult>";
    memset(&s, 0, sizeof s);
    ASSERT_OK(wv__s3xml_each(empty, strlen(empty), "Contents", list_fields,
                             3, collect, &s));
    ASSERT_EQ(s.n, 0);
}

static int stop_at_two(void *arg, const char *const *v)
{
    (void)v;
    return ++*(int *)arg == 2 ? 42 : 0;
}

TEST_IMPL(http_xml_error)
{
    const char *e = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<Error><Code>SignatureDoesNotMatch</Code>"
                    "<Message>The request signature we calculated does "
                    "not match</Message><BucketName>b</BucketName>"
                    "<Self/></Error>";
    char code[64], msg[128], small[8];
    ASSERT_OK(wv__s3xml_root(e, strlen(e), code, sizeof code));
    ASSERT_STREQ(code, "Error");
    ASSERT_OK(wv__s3xml_field(e, strlen(e), "Code", code, sizeof code));
    ASSERT_STREQ(code, "SignatureDoesNotMatch");
    ASSERT_OK(wv__s3xml_field(e, strlen(e), "Message", msg, sizeof msg));
    ASSERT_CONTAINS(msg, "does not match");
    ASSERT_OK(wv__s3xml_field(e, strlen(e), "Self", msg, sizeof msg));
    ASSERT_STREQ(msg, "");
    ASSERT_EQ(wv__s3xml_field(e, strlen(e), "Message", small, sizeof small),
              WV_RANGE);
    int k = 0;
    const char *two = "<R><E/><E/><E/></R>";
    const char *none[1] = {"X"};
    ASSERT_EQ(wv__s3xml_each(two, strlen(two), "E", none, 1, stop_at_two,
                             &k),
              42);
    ASSERT_EQ(k, 2);

    /* Escaping round trip. */
    struct wv__buf b = {0};
    wv__buf_adds(&b, "<R><V>");
    wv__xml_escape(&b, "a&b<c>\"d'e");
    wv__buf_adds(&b, "</V></R>");
    ASSERT_OK(wv__s3xml_field(b.p, b.len, "V", msg, sizeof msg));
    ASSERT_STREQ(msg, "a&b<c>\"d'e");
    wv__buf_release(&b);
}

TEST_IMPL(http_xml_malformed)
{
    static const char *const bad[] = {
        "",
        "   ",
        "<R>",
        "<R></S>",
        "<R><A></R></A>",
        "<R/><R/>",
        "text<R/>",
        "<R/>text",
        "<!DOCTYPE R [<!ENTITY x \"y\">]><R>&x;</R>",
        "<R><![CDATA[x]]></R>",
        "<R><A>&bogus;</A></R>",
        "<R><A>&amp</A></R>",
        "<R><A>a & b</A></R>",
        "<R><A>&#0;</A></R>",
        "<R><A>&#xD800;</A></R>",
        "<R><A>&#x110000;</A></R>",
        "<R><A>&#;</A></R>",
        "<R><A>&#x;</A></R>",
        "<R><A>&#12a;</A></R>",
        "<R a=\"1></R>",
        "<R a=1></R>",
        "<R a></R>",
        "<R <A/></R>",
        "< R/>",
        "<R><!-- unterminated </R>",
        "<?xml unterminated <R/>",
        "<R></ R>",
        "<R/",
        "<R><A>\xff\xfe</A></R>",
        "<R><A><K>\xc3</K></A></R>",
    };
    char v[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strlen(bad[i]);
        struct seen s;
        memset(&s, 0, sizeof s);
        const char *f[1] = {"A"};
        int r1 = wv__s3xml_root(bad[i], n, v, sizeof v);
        int r2 = wv__s3xml_each(bad[i], n, "A", f, 1, collect, &s);
        int r3 = wv__s3xml_field(bad[i], n, "A", v, sizeof v);
        if (r1 != WV_CORRUPT && r2 != WV_CORRUPT && r3 != WV_CORRUPT)
            WVT_FAIL("accepted malformed document %zu: %s", i, bad[i]);
        ASSERT_EQ(s.n, 0); /* nothing delivered from a bad document */
    }
    /* A NUL inside text. */
    const char nul[] = "<R><A>a\0b</A></R>";
    ASSERT_EQ(wv__s3xml_field(nul, sizeof nul - 1, "A", v, sizeof v),
              WV_CORRUPT);
    /* Nesting deeper than 32. */
    struct wv__buf b = {0};
    for (int i = 0; i < 33; i++)
        wv__buf_adds(&b, "<a>");
    for (int i = 0; i < 33; i++)
        wv__buf_adds(&b, "</a>");
    ASSERT_EQ(wv__s3xml_root(b.p, b.len, v, sizeof v), WV_CORRUPT);
    wv__buf_release(&b);
    for (int i = 0; i < 32; i++)
        wv__buf_adds(&b, "<a>");
    for (int i = 0; i < 32; i++)
        wv__buf_adds(&b, "</a>");
    ASSERT_OK(wv__s3xml_root(b.p, b.len, v, sizeof v));
    wv__buf_release(&b);
    /* An entry text over 4096 bytes is refused, not truncated. */
    wv__buf_adds(&b, "<R><A><K>");
    for (int i = 0; i < 5000; i++)
        wv__buf_addc(&b, 'k');
    wv__buf_adds(&b, "</K></A></R>");
    const char *kf[1] = {"K"};
    struct seen s;
    memset(&s, 0, sizeof s);
    ASSERT_EQ(wv__s3xml_each(b.p, b.len, "A", kf, 1, collect, &s),
              WV_CORRUPT);
    ASSERT_EQ(s.n, 0);
    wv__buf_release(&b);
    /* A later malformed entry stops the page before any delivery. */
    const char *late = "<R><A><K>x</K></A><A><K>&bad;</K></A></R>";
    memset(&s, 0, sizeof s);
    ASSERT_EQ(wv__s3xml_each(late, strlen(late), "A", kf, 1, collect, &s),
              WV_CORRUPT);
    ASSERT_EQ(s.n, 0);
}

TEST_IMPL(http_backoff)
{
    /* Caps: 100, 200, 400, ... ms, never above 10 s. */
    uint64_t caps[] = {0, 100, 200, 400, 800, 1600, 3200, 6400, 10000,
                       10000};
    for (int a = 1; a <= 9; a++) {
        ASSERT(wv__backoff_ms(a, UINT64_MAX) <= caps[a]);
        ASSERT_EQ(wv__backoff_ms(a, 0), 0);
        ASSERT_EQ(wv__backoff_ms(a, caps[a]), caps[a]);
    }
    ASSERT(wv__backoff_ms(1000, UINT64_MAX) <= 10000);
    ASSERT(wv__backoff_ms(64, 123456789) <= 10000);
    /* Full jitter: spread over the whole interval. */
    uint64_t x = 88172645463325252ull, lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t d = wv__backoff_ms(4, x);
        ASSERT(d <= 800);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    ASSERT(lo < 20 && hi > 780);

    ASSERT(wv__http_status_retryable(500, NULL));
    ASSERT(wv__http_status_retryable(503, "SlowDown"));
    ASSERT(wv__http_status_retryable(429, NULL));
    ASSERT(wv__http_status_retryable(400, "RequestTimeout"));
    ASSERT(!wv__http_status_retryable(400, "InvalidArgument"));
    ASSERT(!wv__http_status_retryable(403, "AccessDenied"));
    ASSERT(!wv__http_status_retryable(403, "SignatureDoesNotMatch"));
    ASSERT(!wv__http_status_retryable(404, "NoSuchKey"));
    ASSERT(!wv__http_status_retryable(412, NULL));
}

/* ---- a scripted HTTP server on loopback ---------------------------------- */

struct srv {
    int fd, port;
    pthread_t th;
    /* Script mode: responses used in turn, the last one repeating. */
    const char *script[8];
    int n_script, next;
    /* Object mode (when obj != NULL): GET/HEAD of any path. */
    const unsigned char *obj;
    size_t obj_len;
    bool ranges;  /* honour Range */
    bool no_head; /* answer HEAD with 405 */
    int hits;
    char reqs[16][1024]; /* the header blocks of the first requests */
};



static void serve_one(struct srv *s, int c)
{
    char req[8192];
    size_t n = 0;
    char *end = NULL;
    while (n < sizeof req - 1) {
        ssize_t r = recv(c, req + n, sizeof req - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = '\0';
        if ((end = strstr(req, "\r\n\r\n")) != NULL)
            break;
    }
    if (end == NULL)
        return;
    /* Drain a body. */
    const char *cl = strcasestr(req, "\r\nContent-Length:");
    size_t body = cl ? strtoul(cl + 17, NULL, 10) : 0;
    size_t have = n - (size_t)(end + 4 - req);
    char sink[65536];
    while (have < body) {
        ssize_t r = recv(c, sink, sizeof sink, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    int k = __atomic_fetch_add(&s->hits, 1, __ATOMIC_SEQ_CST);
    if (k < 16)
        snprintf(s->reqs[k], sizeof s->reqs[k], "%.*s", (int)(end - req),
                 req);
    char hdr[512];
    if (s->obj == NULL) {
        int i = s->next < s->n_script ? s->next++ : s->n_script - 1;
        wvtest_send_all(c, s->script[i], strlen(s->script[i]));
        return;
    }
    bool is_head = strncmp(req, "HEAD ", 5) == 0;
    if (is_head && s->no_head) {
        const char *r = "HTTP/1.1 405 Method Not Allowed\r\n"
                        "Content-Length: 0\r\nConnection: close\r\n\r\n";
        wvtest_send_all(c, r, strlen(r));
        return;
    }
    const char *rg = strcasestr(req, "\r\nRange: bytes=");
    unsigned long long a = 0, b = 0;
    if (rg && s->ranges && sscanf(rg + 15, "%llu-%llu", &a, &b) == 2) {
        if (a >= s->obj_len) {
            snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 416 Range Not Satisfiable\r\n"
                     "Content-Range: bytes */%zu\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n",
                     s->obj_len);
            wvtest_send_all(c, hdr, strlen(hdr));
            return;
        }
        if (b >= s->obj_len)
            b = s->obj_len - 1;
        snprintf(hdr, sizeof hdr,
                 "HTTP/1.1 206 Partial Content\r\nContent-Length: %llu\r\n"
                 "Content-Range: bytes %llu-%llu/%zu\r\n"
                 "Connection: close\r\n\r\n",
                 b - a + 1, a, b, s->obj_len);
        wvtest_send_all(c, hdr, strlen(hdr));
        if (!is_head)
            wvtest_send_all(c, s->obj + a, (size_t)(b - a + 1));
        return;
    }
    snprintf(hdr, sizeof hdr,
             "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nETag: \"e1\"\r\n"
             "Connection: close\r\n\r\n",
             s->obj_len);
    wvtest_send_all(c, hdr, strlen(hdr));
    if (!is_head)
        wvtest_send_all(c, s->obj, s->obj_len);
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        serve_one(s, c);
        close(c);
    }
    return NULL;
}

static int srv_start(struct srv *s)
{
    return wvtest_srv_start(&s->fd, &s->port, &s->th, srv_main, s);
}

static void srv_stop(struct srv *s)
{
    wvtest_srv_stop(s->fd, s->th);
}

static struct wv__http *engine(int retries)
{
    struct wv__s3cfg t;
    struct wv__http *h = NULL;
    memset(&t, 0, sizeof t);
    t.concurrency = 4;
    t.retries = retries;
    t.max_inflight = (size_t)64 << 20;
    t.part_size = WV__S3_MIN_PART;
    struct wv__err err = {0};
    if (wv__http_new(NULL, &t, &err, &h) != WV_OK)
        return NULL;
    return h;
}

/* A whole response with a correct Content-Length, in one of 8 rotating
 * static buffers. */
static const char *resp(const char *status, const char *hdrs,
                        const char *body)
{
    static char bufs[8][2048];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 2048,
             "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%sConnection: close"
             "\r\n\r\n%s",
             status, strlen(body), hdrs, body);
    return b;
}

#define R503 resp("503 Service Unavailable", "",                            \
                  "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code>"     \
                  "<Message>slow</Message></Error>")
#define R200 resp("200 OK", "ETag: \"abc\"\r\n", "hello")
#define R403 resp("403 Forbidden", "",                                     \
                  "<Error><Code>AccessDenied</Code><Message/></Error>")
#define R500 resp("500 Internal Server Error", "", "")
#define R400T resp("400 Bad Request", "",                                  \
                   "<Error><Code>RequestTimeout</Code></Error>")

static int run_script(struct srv *s, struct wv__http *h, unsigned flags,
                      struct wv__hreq *r, char *url, size_t cap)
{
    snprintf(url, cap, "http://127.0.0.1:%d/b/k", s->port);
    memset(r, 0, sizeof *r);
    r->method = "GET";
    r->url = url;
    r->flags = WV__HREQ_UNSIGNED | flags;
    return wv__http_run(h, r, 1, 1);
}

TEST_IMPL(http_retry_policy)
{
    struct srv s;
    struct wv__hreq r;
    char url[128];
    struct wv__http *h = engine(4);
    ASSERT_NOT_NULL(h);

    /* Two SlowDowns, then success: three attempts. */
    memset(&s, 0, sizeof s);
    s.script[0] = R503;
    s.script[1] = R503;
    s.script[2] = R200;
    s.n_script = 3;
    ASSERT_OK(srv_start(&s));
    ASSERT_OK(run_script(&s, h, 0, &r, url, sizeof url));
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.attempts, 3);
    ASSERT_STREQ(r.etag, "\"abc\"");
    ASSERT_EQ(r.resp.len, 5);
    ASSERT_MEMEQ(r.resp.p, "hello", 5);
    wv__hreq_release(&r);
    srv_stop(&s);

    /* 403 is final at once. */
    memset(&s, 0, sizeof s);
    s.script[0] = R403;
    s.n_script = 1;
    ASSERT_OK(srv_start(&s));
    ASSERT_OK(run_script(&s, h, 0, &r, url, sizeof url));
    ASSERT_EQ(r.status, 403);
    ASSERT_EQ(r.attempts, 1);
    ASSERT_EQ(s.hits, 1);
    wv__hreq_release(&r);
    srv_stop(&s);

    /* 500 forever: retried up to the limit; with NO_RETRY_5XX at once. */
    memset(&s, 0, sizeof s);
    s.script[0] = R500;
    s.n_script = 1;
    ASSERT_OK(srv_start(&s));
    ASSERT_OK(run_script(&s, h, 0, &r, url, sizeof url));
    ASSERT_EQ(r.status, 500);
    ASSERT_EQ(r.attempts, 4);
    wv__hreq_release(&r);
    ASSERT_OK(run_script(&s, h, WV__HREQ_NO_RETRY_5XX, &r, url, sizeof url));
    ASSERT_EQ(r.status, 500);
    ASSERT_EQ(r.attempts, 1);
    ASSERT_EQ(s.hits, 5);
    wv__hreq_release(&r);
    srv_stop(&s);

    /* S3's RequestTimeout (a 400) is retried. */
    memset(&s, 0, sizeof s);
    s.script[0] = R400T;
    s.script[1] = R200;
    s.n_script = 2;
    ASSERT_OK(srv_start(&s));
    ASSERT_OK(run_script(&s, h, 0, &r, url, sizeof url));
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.attempts, 2);
    wv__hreq_release(&r);
    srv_stop(&s);

    /* Nobody listening: a transport failure after every attempt, fast. */
    uint64_t t0 = (uint64_t)time(NULL);
    memset(&r, 0, sizeof r);
    r.method = "GET";
    r.url = "http://127.0.0.1:1/b/k";
    r.flags = WV__HREQ_UNSIGNED;
    ASSERT_OK(wv__http_run(h, &r, 1, 1));
    ASSERT(r.xerr != 0);
    ASSERT_EQ(r.status, 0);
    ASSERT_EQ(r.attempts, 4);
    ASSERT_CONTAINS(r.xmsg, "refused");
    ASSERT((uint64_t)time(NULL) - t0 < 5);
    wv__hreq_release(&r);
    /* Not even sent: retried even when 5xx are not. */
    memset(&r, 0, sizeof r);
    r.method = "PUT";
    r.url = "http://127.0.0.1:1/b/k";
    r.body = "x";
    r.body_len = 1;
    r.flags = WV__HREQ_UNSIGNED | WV__HREQ_NO_RETRY_5XX;
    ASSERT_OK(wv__http_run(h, &r, 1, 1));
    ASSERT_EQ(r.attempts, 4);
    wv__hreq_release(&r);
    wv__http_free(h);
}

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

TEST_IMPL(http_robj)
{
    struct srv s;
    struct wv__err err = {0};
    struct wv__robj *o;
    char url[128];
    size_t len = (size_t)13 << 20; /* 3 parts of 5 MiB */
    unsigned char *obj = malloc(len), *buf = malloc(len);
    ASSERT(obj && buf);
    fill(obj, len, 7);
    clean_env();
    setenv("WV_S3_PART_SIZE", "5M", 1);
    setenv("WV_S3_RETRIES", "2", 1);

    memset(&s, 0, sizeof s);
    s.obj = obj;
    s.obj_len = len;
    s.ranges = true;
    ASSERT_OK(srv_start(&s));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/dir/model.bin", s.port);
    ASSERT_OK(wv__robj_open(url, &err, &o));
    ASSERT_EQ(wv__robj_size(o), len);
    int before = s.hits;
    memset(buf, 0, len);
    ASSERT_OK(wv__robj_read(o, 0, buf, len, &err));
    ASSERT_MEMEQ(buf, obj, len);
    ASSERT_EQ(s.hits - before, 3); /* split into parts */
    ASSERT_OK(wv__robj_read(o, 12345, buf, 777, &err));
    ASSERT_MEMEQ(buf, obj + 12345, 777);
    ASSERT_OK(wv__robj_read(o, len - 1, buf, 1, &err));
    ASSERT_EQ(buf[0], obj[len - 1]);
    ASSERT_EQ(wv__robj_read(o, len - 10, buf, 11, &err), WV_IO_SHORT_READ);
    ASSERT_CONTAINS(err.msg, "passes the end");
    wv__robj_close(o);
    srv_stop(&s);

    /* A server without HEAD: the size comes from a one-byte range. */
    memset(&s, 0, sizeof s);
    s.obj = obj;
    s.obj_len = 1000;
    s.ranges = true;
    s.no_head = true;
    ASSERT_OK(srv_start(&s));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", s.port);
    wv__clearerr(&err);
    ASSERT_OK(wv__robj_open(url, &err, &o));
    ASSERT_EQ(wv__robj_size(o), 1000);
    ASSERT_OK(wv__robj_read(o, 500, buf, 500, &err));
    ASSERT_MEMEQ(buf, obj + 500, 500);
    wv__robj_close(o);
    srv_stop(&s);

    /* A server that ignores Range: the start of the object is fine,
     * anything else is refused rather than read wrong. */
    memset(&s, 0, sizeof s);
    s.obj = obj;
    s.obj_len = 1000;
    ASSERT_OK(srv_start(&s));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", s.port);
    wv__clearerr(&err);
    ASSERT_OK(wv__robj_open(url, &err, &o));
    ASSERT_OK(wv__robj_read(o, 0, buf, 100, &err));
    ASSERT_MEMEQ(buf, obj, 100);
    ASSERT_EQ(wv__robj_read(o, 10, buf, 100, &err), WV_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "byte ranges");
    wv__robj_close(o);
    srv_stop(&s);

    /* Missing object; nobody listening; credentials never in messages. */
    memset(&s, 0, sizeof s);
    s.script[0] = resp("404 Not Found", "", "");
    s.n_script = 1;
    ASSERT_OK(srv_start(&s));
    snprintf(url, sizeof url, "http://user:hunter2@127.0.0.1:%d/x", s.port);
    wv__clearerr(&err);
    ASSERT_EQ(wv__robj_open(url, &err, &o), WV_NOTFOUND);
    ASSERT(o == NULL);
    ASSERT(strstr(err.msg, "hunter2") == NULL);
    srv_stop(&s);
    wv__clearerr(&err);
    ASSERT_EQ(wv__robj_open("http://127.0.0.1:1/x", &err, &o), WV_BACKEND);
    ASSERT_CONTAINS(err.msg, "cannot reach");
    ASSERT_CONTAINS(err.msg, "Connection refused (after 2 attempts)");
    wv__clearerr(&err);
    ASSERT_EQ(wv__robj_open("ftp://x/y", &err, &o), WV_MISUSE);
    free(obj);
    free(buf);
}

/* ---- the ref protocol against scripted replies --------------------------- */

static int list_into(void *arg, const char *key, uint64_t size)
{
    wv__buf_addf(arg, "%s=%llu ", key, (unsigned long long)size);
    return 0;
}

#define LIST_OK resp("200 OK", "", "<ListBucketResult><IsTruncated>false" \
                                   "</IsTruncated></ListBucketResult>")
#define TOMB_BODY "weightvault:deleted-ref\n"

/* Open s3://bkt/p on the scripted server s (which answers the bucket
 * check with its first reply). */
static int open_fake(struct srv *s, bool create, struct wv__err *err,
                     struct wv__store **out)
{
    char ep[64];
    clean_env();
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", s->port);
    setenv("AWS_ENDPOINT_URL", ep, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE", 1);
    setenv("WV_S3_RETRIES", "3", 1);
    return wv__store_open("s3://bkt/p", create, err, out);
}

TEST_IMPL(http_ref_protocol)
{
    struct srv s;
    struct wv__err err = {0};
    struct wv__store *st = NULL;

    /* A 500 after If-Match, and the ref now holds our value: we won. */
    memset(&s, 0, sizeof s);
    s.script[0] = LIST_OK;
    s.script[1] = resp("200 OK", "ETag: \"e1\"\r\n", "old\n");
    s.script[2] = R500;
    s.script[3] = resp("200 OK", "ETag: \"e2\"\r\n", "new\n");
    s.n_script = 4;
    ASSERT_OK(srv_start(&s));
    ASSERT_OK(open_fake(&s, false, &err, &st));
    ASSERT_OK(wv__store_ref_cas(st, "refs/heads/main", "old\n", "new\n"));
    ASSERT_EQ(s.hits, 4);
    ASSERT_CONTAINS(s.reqs[1], "GET /bkt/p/refs/heads/main ");
    ASSERT_CONTAINS(s.reqs[2], "PUT /bkt/p/refs/heads/main ");
    ASSERT_CONTAINS(s.reqs[2], "If-Match: e1\r\n"); /* unquoted */
    ASSERT_CONTAINS(s.reqs[2], "x-amz-acl: bucket-owner-full-control");
    ASSERT_CONTAINS(s.reqs[2], "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    ASSERT_CONTAINS(s.reqs[2], "Authorization: AWS4-HMAC-SHA256 "
                               "Credential=AKIDFAKE/");
    ASSERT(strstr(s.reqs[2], "SECRETFAKE") == NULL);
    wv__store_close(st);
    srv_stop(&s);

    /* ... holding someone else's value: a conflict. */
    memset(&s, 0, sizeof s);
    s.script[0] = LIST_OK;
    s.script[1] = resp("200 OK", "ETag: \"e1\"\r\n", "old\n");
    s.script[2] = R500;
    s.script[3] = resp("200 OK", "ETag: \"e3\"\r\n", "other\n");
    s.n_script = 4;
    ASSERT_OK(srv_start(&s));
    ASSERT_OK(open_fake(&s, false, &err, &st));
    ASSERT_EQ(wv__store_ref_cas(st, "refs/heads/main", "old\n", "new\n"),
              WV_CONFLICT);
    ASSERT_EQ(s.hits, 4);
    wv__clearerr(&err);
    wv__store_close(st);
    srv_stop(&s);

    /* ... unchanged: the write did not happen and is made again. */
    memset(&s, 0, sizeof s);
    s.script[0] = LIST_OK;
    s.script[1] = resp("200 OK", "ETag: \"e1\"\r\n", "old\n");
    s.script[2] = R500;
    s.script[3] = resp("200 OK", "ETag: \"e1\"\r\n", "old\n");
    s.script[4] = resp("200 OK", "ETag: \"e2\"\r\n", "");
    s.n_script = 5;
    ASSERT_OK(srv_start(&s));
    ASSERT_OK(open_fake(&s, false, &err, &st));
    ASSERT_OK(wv__store_ref_cas(st, "refs/heads/main", "old\n", "new\n"));
    ASSERT_EQ(s.hits, 5);
    ASSERT_CONTAINS(s.reqs[4], "PUT /bkt/p/refs/heads/main ");
    ASSERT_CONTAINS(s.reqs[4], "If-Match: e1\r\n");
    wv__store_close(st);
    srv_stop(&s);

    /* 412 is a conflict at once, never retried. */
    memset(&s, 0, sizeof s);
    s.script[0] = LIST_OK;
    s.script[1] = resp("200 OK", "ETag: \"e1\"\r\n", "old\n");
    s.script[2] = resp("412 Precondition Failed", "", "");
    s.n_script = 3;
    ASSERT_OK(srv_start(&s));
    ASSERT_OK(open_fake(&s, false, &err, &st));
    ASSERT_EQ(wv__store_ref_cas(st, "refs/heads/main", "old\n", "new\n"),
              WV_CONFLICT);
    ASSERT_EQ(s.hits, 3);
    wv__clearerr(&err);
    wv__store_close(st);
    srv_stop(&s);

    /* Create over a tombstone: If-None-Match refused, then If-Match on
     * the tombstone's ETag. */
    memset(&s, 0, sizeof s);
    s.script[0] = LIST_OK;
    s.script[1] = resp("412 Precondition Failed", "", "");
    s.script[2] = resp("200 OK", "ETag: \"t1\"\r\n", TOMB_BODY);
    s.script[3] = resp("200 OK", "ETag: \"e4\"\r\n", "");
    s.n_script = 4;
    ASSERT_OK(srv_start(&s));
    ASSERT_OK(open_fake(&s, false, &err, &st));
    ASSERT_OK(wv__store_ref_cas(st, "refs/tags/v1", NULL, "id\n"));
    ASSERT_CONTAINS(s.reqs[1], "If-None-Match: *");
    ASSERT_CONTAINS(s.reqs[3], "If-Match: t1\r\n");
    wv__store_close(st);
    srv_stop(&s);

    /* A delete writes the tombstone with If-Match; ref_get then reports
     * the tombstone as absent. */
    memset(&s, 0, sizeof s);
    s.script[0] = LIST_OK;
    s.script[1] = resp("200 OK", "ETag: \"e1\"\r\n", "old\n");
    s.script[2] = resp("200 OK", "ETag: \"t1\"\r\n", "");
    s.script[3] = resp("200 OK", "ETag: \"t1\"\r\n", TOMB_BODY);
    s.n_script = 4;
    ASSERT_OK(srv_start(&s));
    ASSERT_OK(open_fake(&s, false, &err, &st));
    ASSERT_OK(wv__store_ref_cas(st, "refs/heads/dev", "old\n", NULL));
    ASSERT_CONTAINS(s.reqs[2], "If-Match: e1\r\n");
    ASSERT_CONTAINS(s.reqs[2], "Content-Length: 24\r\n");
    char v[64];
    ASSERT_EQ(wv__store_ref_get(st, "refs/heads/dev", v, sizeof v),
              WV_NOTFOUND);
    wv__clearerr(&err);
    wv__store_close(st);
    srv_stop(&s);

    /* wv init refuses a server that ignores If-None-Match. */
    memset(&s, 0, sizeof s);
    s.script[0] = LIST_OK;
    s.script[1] = resp("200 OK", "ETag: \"p\"\r\n", "");
    s.n_script = 2;
    ASSERT_OK(srv_start(&s));
    ASSERT_EQ(open_fake(&s, true, &err, &st), WV_UNSUPPORTED);
    ASSERT(st == NULL);
    ASSERT_CONTAINS(err.msg, "ignores conditional writes");
    ASSERT_CONTAINS(s.reqs[1], "PUT /bkt/p/.wv-s3-probe ");
    srv_stop(&s);

    /* A page of a listing hides tombstones (by ETag) and the probe. */
    memset(&s, 0, sizeof s);
    s.script[0] = LIST_OK;
    s.script[1] = resp(
        "200 OK", "",
        "<ListBucketResult><IsTruncated>false</IsTruncated>"
        "<Contents><Key>p/refs/heads/a</Key><Size>65</Size>"
        "<ETag>&quot;x&quot;</ETag></Contents>"
        "<Contents><Key>p/refs/heads/gone</Key><Size>24</Size><ETag>&quot;"
        "b44a6607e260823f88cbe7ef79c9fe97&quot;</ETag></Contents>"
        "<Contents><Key>p/.wv-s3-probe</Key><Size>6</Size></Contents>"
        "<Contents><Key>other/x</Key><Size>1</Size></Contents>"
        "</ListBucketResult>");
    s.n_script = 2;
    ASSERT_OK(srv_start(&s));
    wv__clearerr(&err);
    ASSERT_OK(open_fake(&s, false, &err, &st));
    struct wv__buf names = {0};
    ASSERT_OK(wv__store_list(st, "", list_into, &names));
    ASSERT_STREQ(names.p, "refs/heads/a=65 ");
    ASSERT_CONTAINS(s.reqs[1], "GET /bkt?list-type=2&prefix=p%2F ");
    wv__buf_release(&names);
    wv__store_close(st);
    srv_stop(&s);
}

/* Every allocation of the configuration, URL, query, XML and engine code
 * fails in turn: each call fails cleanly (WV_NOMEM or a NULL result) and
 * leaks nothing (the sanitizer build checks). */
TEST_IMPL(http_oom)
{
    struct srv s;
    char dir[600], url[128];
    clean_env();
    snprintf(dir, sizeof dir, "%s/.aws", wvtest_tmpdir());
    mkdir(dir, 0700);
    write_text(wvtest_path(".aws/credentials"),
               "[default]\naws_access_key_id=K\naws_secret_access_key=S\n"
               "aws_session_token=T\n");
    write_text(wvtest_path(".aws/config"), "[default]\nregion=eu-west-1\n"
                                           "ca_bundle=/x.pem\n");
    memset(&s, 0, sizeof s);
    s.script[0] = resp("200 OK", "", list_page);
    s.n_script = 1;
    ASSERT_OK(srv_start(&s));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/b", s.port);
    int done = 0;
    for (long n = 1; n < 400 && !done; n++) {
        struct wv__err err = {0};
        struct wv__s3cfg c;
        struct wv__http *h = NULL;
        struct seen sn;
        memset(&sn, 0, sizeof sn);
        wv__alloc_fail_after(n);
        int rc = wv__s3cfg_load(&c, "s3://b", &err);
        if (rc == WV_OK) {
            char *u = wv__s3_url(&c, "bkt", "a/b", "x=1");
            const char *qn[2] = {"b", "a"}, *qv[2] = {"1", NULL};
            char *q = wv__s3_query(qn, qv, 2);
            int r2 = wv__s3xml_each(list_page, strlen(list_page), "Contents",
                                    list_fields, 3, collect, &sn);
            int r3 = wv__http_new(&c, &c, &err, &h);
            struct wv__hreq r;
            memset(&r, 0, sizeof r);
            int r4 = WV_NOMEM;
            if (r3 == WV_OK) {
                r.method = "GET";
                r.url = url;
                r.flags = WV__HREQ_UNSIGNED;
                r4 = wv__http_run(h, &r, 1, 1);
            }
            wv__alloc_fail_after(0);
            if (u && q && r2 == WV_OK && r3 == WV_OK && r4 == WV_OK &&
                r.status == 200 && !r.resp.oom &&
                r.resp.len == strlen(list_page))
                done = 1;
            ASSERT(u == NULL || strcmp(u, "https://bkt.s3.eu-west-1."
                                          "amazonaws.com/a/b?x=1") == 0);
            ASSERT(q == NULL || strcmp(q, "a=&b=1") == 0);
            ASSERT(r2 == WV_OK || r2 == WV_NOMEM);
            wv__hreq_release(&r);
            wv__http_free(h);
            wv__free(u);
            wv__free(q);
            wv__s3cfg_release(&c);
        } else {
            wv__alloc_fail_after(0);
            ASSERT_EQ(rc, WV_NOMEM);
        }
    }
    wv__alloc_fail_after(0);
    srv_stop(&s);
    ASSERT(done);
}
