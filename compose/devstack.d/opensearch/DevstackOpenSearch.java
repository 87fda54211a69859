// A tiny launcher for one OpenSearch 2.19 node, for compose/devstack.
//
// It replaces org.opensearch.bootstrap.OpenSearch: no modules/ directory, no
// plugin descriptors, no security manager, no jar-hell check. The HTTP
// transport (Netty4Plugin) and the common analyzers (CommonAnalysisPlugin)
// are passed to the node as classpath plugins, the way OpenSearch's own test
// framework (MockNode) does it.
//
// Usage: java -cp 'lib/*:<dir of this class>' -Dopensearch.path.home=H \
//             DevstackOpenSearch
// H/config must hold opensearch.yml and log4j2.properties.

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.transport.Netty4Plugin;

public final class DevstackOpenSearch {

    static final class DevNode extends Node {
        DevNode(Environment env) {
            // The boolean is forbidPrivateIndexSettings, true as in production.
            super(env, List.of(Netty4Plugin.class, CommonAnalysisPlugin.class), true);
        }
    }

    public static void main(String[] args) throws Exception {
        String home = System.getProperty("opensearch.path.home");
        if (home == null || home.isEmpty()) {
            System.err.println("DevstackOpenSearch: -Dopensearch.path.home is required");
            System.exit(2);
        }
        Path homePath = Paths.get(home).toAbsolutePath();
        Path configPath = homePath.resolve("config");
        Settings initial = Settings.builder().put("path.home", homePath.toString()).build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
            initial, Collections.emptyMap(), configPath, () -> "devstack");
        LogConfigurator.registerErrorListener();
        LogConfigurator.configure(env);

        final Node node = new DevNode(env);
        final CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, java.util.concurrent.TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "devstack-opensearch-shutdown"));
        node.start();
        System.out.println("DevstackOpenSearch: node started");
        // Node threads are daemons: keep the JVM alive until a signal arrives.
        stopped.await();
    }
}
