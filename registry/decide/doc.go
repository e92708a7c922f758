// Package decide is trustreg's decision code: whether an entity is
// authorized for an action on a resource under a framework at a valid time,
// as the registry knew it at an index (Decide, DecideSecond), and whether a
// framework recognizes another (Recognize).
//
// It reads the stored records it decides from through Records alone: the
// exact bytes of one record by its typed key (RecordKey), and one named
// range read, the accreditations a subject received in a framework
// (Records.Received). It imports no storage, so the same decision runs over
// the node's Pebble store (package registry) and over records proven some
// other way. It imports only the record types (registry/record).
package decide
