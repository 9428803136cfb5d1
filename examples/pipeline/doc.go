// Package pipeline is the example of guests delegating to each other over
// Cap'n Proto (README.md beside this file): three Go guests launched
// separately — fetcher, parser and store — that meet on channel
// "pipeline". Its test runs them end to end through a supervisor and the
// daemon's guest-facing server.
package pipeline
