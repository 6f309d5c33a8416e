// Package testkit holds the fixtures that tests in several packages share:
// a settable clock, well-known KMS GUIDs and CMIDs, and a real DCE/RPC
// endpoint standing in for a KMS host. It is imported only by _test files.
package testkit
