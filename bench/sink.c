/* sink.c - baseline for bench/upload1g.py: the least an HTTP upload server can do.
 *
 * One connection at a time, blocking sockets, no libraries. For each request it
 * reads the head, reads a Content-Length body and write(2)s it to a new file in
 * --dir (no fsync), then replies
 *   HTTP/1.1 200 OK\r\nContent-Length: N\r\n\r\nSuccess <bytes>
 * Keep-alive is honoured; "Expect: 100-continue" gets a 100 Continue.
 * A request without Content-Length (or with Transfer-Encoding) gets a 400 and the
 * connection is closed: this is a baseline, not a server.
 *
 * With --fsync it fdatasyncs the file before replying: the durable baseline,
 * doing the least that resumed's durability contract demands.
 * Usage: sink [--listen HOST:PORT] [--dir DIR] [--quiet] [--fsync]
 * Prints "sink: listening on http://HOST:PORT" on stderr once listening
 * (port 0 = ephemeral), like resumed.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o sink sink.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define HEAD_MAX (64 * 1024)

static char buf[BUF_SIZE];
static int quiet;
static int sync_before_reply; /* --fsync: the durable baseline */

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Find header NAME in the head [p, end) and return a pointer to its value
 * (leading spaces skipped), or NULL. Lines end with "\r\n". */
static const char *find_header(const char *head, size_t len, const char *name)
{
	size_t nl = strlen(name);
	const char *p = memchr(head, '\n', len); /* skip the request line */
	const char *end = head + len;

	while (p && p + 1 < end) {
		p++;
		if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			return v;
		}
		p = memchr(p, '\n', (size_t)(end - p));
	}
	return NULL;
}

/* Serve requests on one connection until it closes. Returns nothing; errors
 * just end the connection. */
static void serve(int cfd, const char *dir, unsigned long long *file_no)
{
	size_t have = 0; /* bytes in buf */

	for (;;) {
		/* Read until the end of the head. */
		char *eoh = NULL;
		for (;;) {
			if (have >= 4) {
				eoh = memmem(buf, have, "\r\n\r\n", 4);
				if (eoh)
					break;
			}
			if (have >= HEAD_MAX)
				return;
			ssize_t r = read(cfd, buf + have, BUF_SIZE - have);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return;
			have += (size_t)r;
		}
		size_t head_len = (size_t)(eoh - buf) + 4;

		const char *cl = find_header(buf, head_len, "Content-Length");
		const char *te = find_header(buf, head_len, "Transfer-Encoding");
		const char *ex = find_header(buf, head_len, "Expect");
		const char *co = find_header(buf, head_len, "Connection");
		int close_after = co && strncasecmp(co, "close", 5) == 0;
		unsigned long long want = 0;
		if (te) {
			static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
						  "Connection: close\r\n\r\n";
			write_all(cfd, bad, sizeof bad - 1);
			return;
		}
		if (cl) {
			char *e;
			want = strtoull(cl, &e, 10);
			if (e == cl)
				return;
		}
		if (ex && strncasecmp(ex, "100-continue", 12) == 0) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			if (write_all(cfd, cont, sizeof cont - 1) < 0)
				return;
		}

		/* Body bytes that came with the head. */
		size_t extra = have - head_len;
		memmove(buf, buf + head_len, extra);
		have = extra;

		int ofd = -1;
		if (cl) {
			char path[4096];
			snprintf(path, sizeof path, "%s/sink-%d-%llu", dir, (int)getpid(), (*file_no)++);
			ofd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (ofd < 0) {
				perror(path);
				return;
			}
		}
		unsigned long long got = 0;
		while (got < want) {
			if (have == 0) {
				size_t room = BUF_SIZE;
				if (want - got < room)
					room = (size_t)(want - got);
				ssize_t r = read(cfd, buf, room);
				if (r < 0 && errno == EINTR)
					continue;
				if (r <= 0)
					break;
				have = (size_t)r;
			}
			size_t take = have;
			if (want - got < take)
				take = (size_t)(want - got);
			if (write_all(ofd, buf, take) < 0) {
				perror("write");
				break;
			}
			got += take;
			memmove(buf, buf + take, have - take); /* only pipelined leftovers */
			have -= take;
		}
		if (ofd >= 0) {
			if (sync_before_reply && got == want && fdatasync(ofd) < 0)
				perror("fdatasync");
			close(ofd);
		}
		if (got < want) {
			if (!quiet)
				fprintf(stderr, "sink: connection ended after %llu of %llu body bytes\n", got, want);
			return;
		}

		char body[64], resp[256];
		int bl = snprintf(body, sizeof body, "Success %llu", got);
		int rl = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s", bl,
				  close_after ? "Connection: close\r\n" : "", body);
		if (write_all(cfd, resp, (size_t)rl) < 0)
			return;
		if (!quiet)
			fprintf(stderr, "sink: request done, %llu body bytes\n", got);
		if (close_after)
			return;
	}
}

int main(int argc, char **argv)
{
	const char *listen_at = "127.0.0.1:8081";
	const char *dir = ".";

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			listen_at = argv[++i];
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--quiet") == 0)
			quiet = 1;
		else if (strcmp(argv[i], "--fsync") == 0)
			sync_before_reply = 1;
		else {
			fprintf(stderr, "usage: %s [--listen HOST:PORT] [--dir DIR] [--quiet] [--fsync]\n", argv[0]);
			return 2;
		}
	}

	char host[256];
	const char *colon = strrchr(listen_at, ':');
	if (!colon || (size_t)(colon - listen_at) >= sizeof host) {
		fprintf(stderr, "sink: bad --listen %s\n", listen_at);
		return 2;
	}
	memcpy(host, listen_at, (size_t)(colon - listen_at));
	host[colon - listen_at] = '\0';

	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "sink: bad host %s (IPv4 only)\n", host);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	if (listen(lfd, 128) < 0)
		die("listen");
	socklen_t sl = sizeof sa;
	if (getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0)
		die("getsockname");
	fprintf(stderr, "sink: listening on http://%s:%u\n", host, (unsigned)ntohs(sa.sin_port));

	unsigned long long file_no = 0;
	for (;;) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept");
		}
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		serve(cfd, dir, &file_no);
		close(cfd);
	}
}
