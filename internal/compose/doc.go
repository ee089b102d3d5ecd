// Package compose holds no code, only tests: they check docker-compose.yml, the Dockerfile,
// .env.example and deploy/ against the configuration the binaries really read, so that the
// container files fail a test, not a user, when the code moves on.
package compose
