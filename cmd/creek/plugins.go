package main

// Sources and sinks register themselves when imported.
import (
	_ "github.com/creek-pipeline/creek/internal/processor"
	_ "github.com/creek-pipeline/creek/internal/sink/console"
	_ "github.com/creek-pipeline/creek/internal/sink/dynamodb"
	_ "github.com/creek-pipeline/creek/internal/sink/elasticsearch"
	_ "github.com/creek-pipeline/creek/internal/sink/file"
	_ "github.com/creek-pipeline/creek/internal/sink/kafka"
	_ "github.com/creek-pipeline/creek/internal/sink/postgres"
	_ "github.com/creek-pipeline/creek/internal/sink/s3"
	_ "github.com/creek-pipeline/creek/internal/source/file"
	_ "github.com/creek-pipeline/creek/internal/source/generate"
	_ "github.com/creek-pipeline/creek/internal/source/http"
	_ "github.com/creek-pipeline/creek/internal/source/kafka"
	_ "github.com/creek-pipeline/creek/internal/source/stdin"
	_ "github.com/creek-pipeline/creek/internal/source/x"
)
