// Package textout holds the small writer the commands print their text
// reports through: it keeps the first write error so a printer checks it
// once, at the end, instead of after every line.
package textout
