package sqldir

// MappedConfig declares an application's existing user table.
type MappedConfig struct{}

func (m *MappedConfig) validate(d *dialect) error { return nil }
