// Package progress shows long work as live bars on a terminal and stays
// silent otherwise: when stderr is not a TTY the log lines already say
// everything, and escape codes would only garble CI logs.
package progress
