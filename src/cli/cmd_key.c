/*
 * cmd_key.c -- wv key (the key slots of an encrypted repository), wv
 * keygen (signing key pairs and raw repository keys), wv trust (the keys
 * whose signatures a repository accepts). What the other commands share
 * about secrets (the global --key-file option, the passphrase prompt) is
 * in common.c.
 *
 * Secrets typed or read here are wiped as soon as the library has them and
 * never printed.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* ---- wv key --------------------------------------------------------------- */

static const char key_help[] =
    "usage: wv key add REPO [--label NAME] [--new-key-file FILE]\n"
    "       WV_NEW_PASSPHRASE=... wv key add REPO [--label NAME]\n"
    "       wv key list REPO\n"
    "       wv key remove REPO ID\n"
    "\n"
    "Manage who can open an encrypted repository (wv init --encrypt). Its\n"
    "random repository key is stored once per key slot, wrapped by that\n"
    "slot's secret: a passphrase (through Argon2id) or a key file. Every\n"
    "command opens the repository with your secret, from --key-file FILE,\n"
    "else $WV_PASSPHRASE, else the key file named by $WV_KEY_FILE, else a\n"
    "passphrase typed at the terminal.\n"
    "\n"
    "  add     add a slot for a new secret: --new-key-file FILE (a raw key\n"
    "          from 'wv keygen --secret', or a file holding a passphrase),\n"
    "          else the passphrase in $WV_NEW_PASSPHRASE, else one typed\n"
    "          twice at the terminal (without a terminal, one of the first\n"
    "          two is needed); prints the new slot's id. The repository is\n"
    "          opened with your current secret as usual ($WV_PASSPHRASE,\n"
    "          --key-file ...), the new one comes from these\n"
    "  list    the slots: id, kind, creation time, label ('*' marks the one\n"
    "          you opened it with)\n"
    "  remove  remove a slot (by id, or a unique prefix of 4+ digits): its\n"
    "          secret no longer opens the repository, the others still do.\n"
    "          The last slot cannot be removed. Nothing is re-encrypted:\n"
    "          revoke a secret before its holder could copy the data.\n"
    "          The next push or pull removes the slot from the copies of\n"
    "          the repository too, and a push from an older copy never\n"
    "          brings it back.\n"
    "\n"
    "  --label NAME   a name for the new slot (who holds it)\n"
    "  --new-key-file FILE\n"
    "                 add: the new secret is this key file\n"
    "  --key-file F   open the repository with this key file\n"
    "\n"
    "environment: WV_PASSPHRASE or WV_KEY_FILE (the secret that opens the\n"
    "repository), WV_NEW_PASSPHRASE (key add: the new passphrase)\n"
    "\n"
    "exit status: 0 ok, 2 usage, 3 not found, 6 missing or wrong key\n";

struct list_ctx {
    int n;
};

static int print_slot(void *arg, const wv_key_slot *k)
{
    struct list_ctx *c = arg;
    printf("%s %s  %-10s  %s  %s\n", k->current ? "*" : " ", k->id, k->kind,
           cli_text(k->created), cli_q(k->label));
    c->n++;
    return 0;
}

static int key_exit(int rc)
{
    return rc == WV_MISUSE ? EXIT_USAGE : cli_exit_code(rc);
}

int cmd_key(int argc, char **argv)
{
    const char *sub = NULL, *repo = NULL, *id = NULL, *label = NULL;
    const char *new_file = NULL;
    wv_repo *r = NULL;
    int rc = WV_OK, ret = 0;
    char pass[1024] = "";

    if (cli_want_help(argc, argv)) {
        fputs(key_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--label") == 0 || strcmp(a, "--new-key-file") == 0) {
            if (i + 1 >= argc)
                return cli_usage("key", "%s needs a value", a);
            if (a[2] == 'l')
                label = argv[++i];
            else
                new_file = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown_option("key", key_help, a);
        } else if (sub == NULL) {
            sub = a;
        } else if (repo == NULL) {
            repo = a;
        } else if (id == NULL) {
            id = a;
        } else {
            return cli_usage("key", "unexpected argument '%s'", a);
        }
    }
    if (sub == NULL || repo == NULL)
        return cli_usage("key", "needs add, list or remove, and REPO");
    bool add = strcmp(sub, "add") == 0, list = strcmp(sub, "list") == 0;
    bool rm = strcmp(sub, "remove") == 0;
    static const char *const subs[] = {"add", "list", "remove"};
    if (!add && !list && !rm)
        return cli_unknown_word("key", "subcommand", sub, subs, 3);
    if (rm && id == NULL)
        return cli_usage("key", "remove needs the slot ID");
    if (!rm && id != NULL)
        return cli_usage("key", "unexpected argument '%s'", id);
    if (!add && (label || new_file))
        return cli_usage("key", "--label and --new-key-file go with add");
    if ((rc = cli_open_repo(repo, &r)) != WV_OK)
        return cli_exit_code(rc);
    if (!wv_repo_encrypted(r)) {
        fprintf(stderr, "wv: %s: the repository is not encrypted (it has no "
                        "keys)\n",
                repo);
        ret = EXIT_USAGE;
        goto out;
    }
    if (list) {
        struct list_ctx c = {0};
        rc = wv_repo_key_list(r, print_slot, &c);
    } else if (rm) {
        rc = wv_repo_key_remove(r, id);
        if (rc == WV_OK)
            printf("removed key slot %s\n", id);
    } else {
        char sid[17];
        const char *np = getenv("WV_NEW_PASSPHRASE");
        if (new_file == NULL && (np == NULL || np[0] == '\0')) {
            if (cli_prompt_secret("New passphrase: ", true, pass,
                                  sizeof pass) != 0) {
                fprintf(stderr, "wv: %s: key add needs the new secret: "
                                "--new-key-file, WV_NEW_PASSPHRASE or a "
                                "terminal\n",
                        repo);
                ret = EXIT_USAGE;
                goto out;
            }
            np = pass;
        }
        rc = wv_repo_key_add(r, new_file ? NULL : np, new_file, label, sid);
        cli_wipe(pass, sizeof pass);
        if (rc == WV_OK)
            printf("%s\n", sid);
    }
    if (rc != WV_OK) {
        cli_die(wv_repo_errmsg(r));
        ret = key_exit(rc);
    }
out:
    wv_repo_close(r);
    return ret;
}

/* ---- wv keygen ------------------------------------------------------------ */

static const char keygen_help[] =
    "usage: wv keygen -o NAME\n"
    "       wv keygen --secret -o FILE\n"
    "\n"
    "Make a new Ed25519 signing key pair: NAME.key (the secret key, mode\n"
    "0600: keep it private) and NAME.pub (the public key, to hand out).\n"
    "Sign checkpoints with 'wv commit --sign NAME.key'; check them with\n"
    "'wv checkout --verify-signer NAME.pub' or 'wv trust add REPO\n"
    "NAME.pub'.\n"
    "\n"
    "With --secret, write a new random repository key file FILE instead\n"
    "(mode 0600), for 'wv init --encrypt --key-file FILE' or 'wv key add\n"
    "--new-key-file FILE'. Existing files are never overwritten.\n";

int cmd_keygen(int argc, char **argv)
{
    const char *out = NULL;
    bool secret = false;
    char eb[WV_ERRBUF_SIZE] = "";
    if (cli_want_help(argc, argv)) {
        fputs(keygen_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0) {
            if (i + 1 >= argc)
                return cli_usage("keygen", "-o needs a NAME");
            out = argv[++i];
        } else if (strcmp(argv[i], "--secret") == 0) {
            secret = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_unknown_option("keygen", keygen_help, argv[i]);
        } else if (out == NULL) {
            out = argv[i];
        } else {
            return cli_usage("keygen", "unexpected argument '%s'", argv[i]);
        }
    }
    if (out == NULL)
        return cli_usage("keygen", "needs -o NAME");
    int rc = secret ? wv_secret_keygen(out, eb, sizeof eb)
                    : wv_keygen(out, eb, sizeof eb);
    if (rc != WV_OK) {
        cli_die(eb[0] ? eb : wv_strerror(rc));
        return key_exit(rc);
    }
    if (secret)
        printf("wrote %s (a repository key: keep it private)\n", out);
    else
        printf("wrote %s.key (secret: keep it private) and %s.pub\n", out,
               out);
    return 0;
}

/* ---- wv trust ------------------------------------------------------------- */

static const char trust_help[] =
    "usage: wv trust add REPO NAME.pub [--label NAME]\n"
    "       wv trust list REPO\n"
    "       wv trust remove REPO ID\n"
    "\n"
    "The public keys (from 'wv keygen') whose signatures the repository\n"
    "accepts. While the list is not empty, every checkout (and diff) refuses\n"
    "a checkpoint that is not signed by one of them, and 'wv verify' reports\n"
    "each such checkpoint. In an encrypted repository the list is sealed\n"
    "with the repository key, so only key holders can change it; in a plain\n"
    "one it is as safe as write access to the store: use 'wv checkout\n"
    "--verify-signer NAME.pub' to rely on a key you hold yourself.\n"
    "\n"
    "  add     trust the key in NAME.pub\n"
    "  list    the trusted keys: id (first 16 hex digits), label, key\n"
    "  remove  stop trusting a key (id or a unique prefix of 4+ digits);\n"
    "          the next push or pull removes it from the copies too\n";

static int print_trusted(void *arg, const wv_trusted_key *k)
{
    (void)arg;
    printf("%s  %-20s  %s\n", k->id, cli_q(k->label), k->key);
    return 0;
}

int cmd_trust(int argc, char **argv)
{
    const char *sub = NULL, *repo = NULL, *arg = NULL, *label = NULL;
    wv_repo *r = NULL;
    int rc, ret = 0;
    if (cli_want_help(argc, argv)) {
        fputs(trust_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--label") == 0) {
            if (i + 1 >= argc)
                return cli_usage("trust", "--label needs a value");
            label = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown_option("trust", trust_help, a);
        } else if (sub == NULL) {
            sub = a;
        } else if (repo == NULL) {
            repo = a;
        } else if (arg == NULL) {
            arg = a;
        } else {
            return cli_usage("trust", "unexpected argument '%s'", a);
        }
    }
    if (sub == NULL || repo == NULL)
        return cli_usage("trust", "needs add, list or remove, and REPO");
    bool add = strcmp(sub, "add") == 0, list = strcmp(sub, "list") == 0;
    bool rm = strcmp(sub, "remove") == 0;
    static const char *const subs[] = {"add", "list", "remove"};
    if (!add && !list && !rm)
        return cli_unknown_word("trust", "subcommand", sub, subs, 3);
    if (list && arg != NULL)
        return cli_usage("trust", "list takes only REPO");
    if (!list && arg == NULL)
        return cli_usage("trust", "%s needs %s", sub,
                         add ? "NAME.pub" : "the key ID");
    if (label && !add)
        return cli_usage("trust", "--label goes with add");
    if ((rc = cli_open_repo(repo, &r)) != WV_OK)
        return cli_exit_code(rc);
    if (list) {
        rc = wv_repo_trust_list(r, print_trusted, NULL);
    } else if (rm) {
        rc = wv_repo_trust_remove(r, arg);
        if (rc == WV_OK)
            printf("no longer trusted: %s\n", arg);
    } else {
        char id[17];
        rc = wv_repo_trust_add(r, arg, label, id);
        if (rc == WV_OK)
            printf("trusted %s: checkouts now need a signature by a trusted "
                   "key\n",
                   id);
    }
    if (rc != WV_OK) {
        cli_die(wv_repo_errmsg(r));
        ret = key_exit(rc);
    }
    wv_repo_close(r);
    return ret;
}
