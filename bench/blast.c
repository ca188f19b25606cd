/* blast.c - upload client for bench/upload1g.py that sends a file from memory.
 *
 * curl tops out around 1.5 GiB/s on this class of machine (its own CPU is the
 * bottleneck, see the http-layer research §3.3), so the benchmark uses this
 * instead: the file is mmap'ed (MAP_POPULATE, ideally from /dev/shm) before the
 * clock starts, then one POST with Content-Length is written with plain
 * blocking send(2) calls, and the response is read.
 *
 * Usage: blast HOST:PORT FILE PATH ['Name: value' ...]
 * Output (one line on stdout):
 *   STATUS BODY_BYTES_SENT WALL_SECONDS CLIENT_CPU_SECONDS RESPONSE_BODY
 * WALL_SECONDS runs from just before connect() to the end of the response.
 * Exit status 0 if a complete response was read, 1 otherwise.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o blast blast.c
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
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (4u << 20)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_secs(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s HOST:PORT FILE PATH ['Name: value' ...]\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	char host[256];
	const char *colon = strrchr(argv[1], ':');
	if (!colon || (size_t)(colon - argv[1]) >= sizeof host) {
		fprintf(stderr, "blast: bad address %s\n", argv[1]);
		return 2;
	}
	memcpy(host, argv[1], (size_t)(colon - argv[1]));
	host[colon - argv[1]] = '\0';
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "blast: bad host %s\n", host);
		return 2;
	}

	int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		perror(argv[2]);
		return 2;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		perror("fstat");
		return 2;
	}
	size_t size = (size_t)st.st_size;
	const char *data = "";
	if (size > 0) {
		data = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
		if (data == MAP_FAILED) {
			perror("mmap");
			return 2;
		}
	}
	close(fd);

	char head[16384];
	size_t hl = (size_t)snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: %s\r\n", argv[3], argv[1]);
	for (int i = 4; i < argc; i++) {
		if (hl + strlen(argv[i]) + 64 >= sizeof head) {
			fprintf(stderr, "blast: headers too long\n");
			return 2;
		}
		hl += (size_t)snprintf(head + hl, sizeof head - hl, "%s\r\n", argv[i]);
	}
	hl += (size_t)snprintf(head + hl, sizeof head - hl, "Content-Length: %zu\r\nConnection: close\r\n\r\n", size);

	double cpu0 = cpu_secs();
	double t0 = now();
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("blast: connect");
		return 1;
	}
	int one = 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

	size_t sent_head = 0, sent = 0;
	int send_err = 0;
	while (sent_head < hl) {
		ssize_t w = send(s, head + sent_head, hl - sent_head, 0);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			send_err = errno;
			break;
		}
		sent_head += (size_t)w;
	}
	while (!send_err && sent < size) {
		size_t n = size - sent < CHUNK ? size - sent : CHUNK;
		ssize_t w = send(s, data + sent, n, 0);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			send_err = errno;
			break;
		}
		sent += (size_t)w;
	}
	if (send_err)
		fprintf(stderr, "blast: send stopped after %zu body bytes: %s\n", sent, strerror(send_err));

	/* Read the whole response (Connection: close, so until EOF; also stop once
	 * Content-Length bytes of body are in). */
	static char resp[65536];
	size_t rl = 0;
	int complete = 0;
	for (;;) {
		if (rl == sizeof resp - 1)
			break;
		ssize_t r = recv(s, resp + rl, sizeof resp - 1 - rl, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		rl += (size_t)r;
		resp[rl] = '\0';
		char *eoh;
		while ((eoh = strstr(resp, "\r\n\r\n")) && strncmp(resp, "HTTP/1.1 1", 10) == 0) {
			/* drop interim 1xx responses */
			size_t drop = (size_t)(eoh + 4 - resp);
			memmove(resp, resp + drop, rl - drop + 1);
			rl -= drop;
		}
		eoh = strstr(resp, "\r\n\r\n");
		if (eoh) {
			const char *cl = strcasestr(resp, "\r\nContent-Length:");
			if (cl && cl < eoh) {
				size_t want = strtoul(cl + 17, NULL, 10);
				if (rl - (size_t)(eoh + 4 - resp) >= want) {
					complete = 1;
					break;
				}
			}
		}
	}
	double t1 = now();
	double cpu1 = cpu_secs();
	close(s);
	resp[rl] = '\0';

	int status = 0;
	const char *body = "";
	char *eoh = strstr(resp, "\r\n\r\n");
	if (eoh) {
		complete = 1; /* a head plus whatever body arrived before EOF */
		sscanf(resp, "HTTP/1.%*d %d", &status);
		body = eoh + 4;
		for (char *q = eoh + 4; *q; q++)
			if (*q == '\r' || *q == '\n')
				*q = ' ';
	} else {
		complete = 0;
	}
	printf("%d %zu %.6f %.3f %s\n", status, sent, t1 - t0, cpu1 - cpu0, body);
	return complete ? 0 : 1;
}
