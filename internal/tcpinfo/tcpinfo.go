// Package tcpinfo asks the kernel when data last moved on a TCP connection
// (Linux's TCP_INFO). Overload shedding reads how long a request waited
// unread (internal/shed); the drain reads whether a keep-alive connection
// is still in use (internal/drain).
package tcpinfo
