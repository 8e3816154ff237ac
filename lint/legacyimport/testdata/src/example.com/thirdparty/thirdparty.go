// Package thirdparty has "party" in its path but nothing to do with PartyKit.
package thirdparty

// OK is a value.
const OK = true
