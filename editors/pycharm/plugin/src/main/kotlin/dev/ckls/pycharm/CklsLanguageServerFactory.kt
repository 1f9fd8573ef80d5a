package dev.ckls.pycharm

import com.intellij.openapi.project.Project
import com.redhat.devtools.lsp4ij.LanguageServerFactory
import com.redhat.devtools.lsp4ij.server.ProcessStreamConnectionProvider
import com.redhat.devtools.lsp4ij.server.StreamConnectionProvider
import java.io.File

/** Starts `ckls serve` over stdio for LSP4IJ. */
class CklsLanguageServerFactory : LanguageServerFactory {
    override fun createConnectionProvider(project: Project): StreamConnectionProvider =
        CklsConnectionProvider(project)
}

/**
 * The server command: $CKLS_SERVER (a whole command line) when set, else `ckls` found on PATH or in the
 * project's `.venv`/`venv`, else `python3 -m ckls`.
 */
class CklsConnectionProvider(project: Project) : ProcessStreamConnectionProvider() {
    init {
        commands = serverCommand(project.basePath)
        project.basePath?.let { workingDirectory = it }
    }

    companion object {
        fun serverCommand(projectDir: String?, env: Map<String, String> = System.getenv()): List<String> {
            env["CKLS_SERVER"]?.trim()?.takeIf { it.isNotEmpty() }?.let { return it.split(Regex("\\s+")) }
            val windows = System.getProperty("os.name").lowercase().startsWith("windows")
            val exe = if (windows) "ckls.exe" else "ckls"
            val candidates = buildList {
                projectDir?.let { dir ->
                    for (venv in listOf(".venv", "venv")) {
                        add(File(dir, if (windows) "$venv/Scripts/$exe" else "$venv/bin/$exe"))
                    }
                }
                env["PATH"]?.split(File.pathSeparator)?.forEach { add(File(it, exe)) }
            }
            candidates.firstOrNull { it.isFile && it.canExecute() }?.let { return listOf(it.path, "serve") }
            return listOf(if (windows) "python" else "python3", "-m", "ckls", "serve")
        }
    }
}
