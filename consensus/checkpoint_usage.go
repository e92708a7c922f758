package consensus

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
)

// CheckpointUsage is the disk space under the checkpoints directory
// (<raft dir>/checkpoints): the raft snapshots kept as checkpoints of the
// state, checkpoints being taken, and streams being made from them.
type CheckpointUsage struct {
	// Own is the bytes of files no other directory links: files the live
	// state has compacted away (or never had, as a copied WAL or a
	// stream), which the checkpoints keep from being freed until raft
	// reaps their snapshots.
	Own int64
	// Shared is the bytes of files the live state still links as well: a
	// checkpoint costs no room for them.
	Shared int64
}

// fileID names a file by its device and inode.
type fileID struct{ dev, ino uint64 }

// linkCount returns the file's device and inode and its link count; ok is
// false where the file's stat has none.
func linkCount(info fs.FileInfo) (id fileID, links uint64, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, 0, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, uint64(st.Nlink), true
}

// usage measures the checkpoints directory. A file is Own when every one
// of its links is under the directory (its link count is the number of
// times the walk met it); a file whose stat gives no link count counts as
// Own. Each file's latest link count is kept: a checkpoint taken during
// the walk adds links to the state's files, and a compaction of the state
// removes some. Files and directories removed during the walk (a prune, a
// stream's last reader) are skipped; a missing directory measures zero.
func (c *checkpoints) usage() (CheckpointUsage, error) {
	type seen struct {
		size  int64
		links uint64 // the file's link count
		met   uint64 // links met under the directory
	}
	files := map[fileID]*seen{}
	var u CheckpointUsage
	err := filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		id, links, ok := linkCount(info)
		if !ok {
			u.Own += info.Size()
			return nil
		}
		f := files[id]
		if f == nil {
			f = &seen{size: info.Size()}
			files[id] = f
		}
		f.links = links
		f.met++
		return nil
	})
	if err != nil {
		return CheckpointUsage{}, err
	}
	for _, f := range files {
		if f.met >= f.links {
			u.Own += f.size
		} else {
			u.Shared += f.size
		}
	}
	return u, nil
}
