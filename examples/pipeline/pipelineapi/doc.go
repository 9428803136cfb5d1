// Package pipelineapi is the Go code generated from
// examples/pipeline/pipeline.capnp (scripts/gen-schemas.sh): the Store and
// Parser interfaces the example pipeline's guests serve and call.
package pipelineapi
