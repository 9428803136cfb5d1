package caps

// GrantRights returns the rights a supervisor grant of kind k carries:
// everything the kind allows, less every right that modifies anything when
// readOnly is set (the ":ro" of `--grant dir:HOST:ro`). Read-only is
// applied to both sets, so nothing opened beneath a read-only directory can
// be written either.
func GrantRights(k Kind, readOnly bool) (base, inheriting Rights) {
	base, inheriting = k.MaxRights()
	if readOnly {
		base &^= RightsWriteMask
		inheriting &^= RightsWriteMask
	}
	return base, inheriting
}
